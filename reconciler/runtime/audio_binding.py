"""Bind each stamped call's archived audio to its evidence: the `audio_archived` records.

At call start the recording is still being made, so the stamping record has no audio
checksum. Once the platform's export has put the audio in the Object-Locked archive, this
appends one more chained record per call: the same conversation, recording and snapshot
digest as the stamping record, plus the SHA-256 of the archived audio, so one record binds
what was said to the prices in force when it was said.

A call is bound only when its archived audio hashes to what the export's `_metadata.json`
says (`sha256`); a call whose audio is absent stays awaiting (the export may not have run
yet), and one whose hash disagrees is reported, not bound (`recon verify-archive` explains
it). Binding is idempotent: a call with an `audio_archived` record is never read again.

`plan_bindings` is the pure decision; `bind_audio` reads the archive (providers' archive
reader, only the month folders of the awaiting calls) and appends.

Called by: `recon evidence bind-audio` (reconciler.cli.evidence_commands).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.providers.archive_layout import ArchiveKey
from reconciler.runtime.evidence import EvidenceLog, EvidenceRecord


@dataclass(slots=True)
class BindReport:
    bound: list[tuple[str, str]] = field(default_factory=list)
    """(conversation id, audio SHA-256) appended as audio_archived records."""
    awaiting: list[str] = field(default_factory=list)
    """Stamped calls whose audio is not in the archive (yet)."""
    mismatched: list[tuple[str, str]] = field(default_factory=list)
    """(conversation id, why): audio present but not what its metadata says."""


def plan_bindings(
    awaiting: Sequence[EvidenceRecord],
    objects: Mapping[str, ArchiveKey],
    metadata: Mapping[str, Any],
    hashes: Mapping[str, str],
) -> BindReport:
    """Which awaiting calls can be bound to which audio hash (pure)."""
    by_conversation: dict[str, list[tuple[str, ArchiveKey]]] = {}
    for key, parsed in objects.items():
        by_conversation.setdefault(parsed.conversation_id, []).append((key, parsed))
    report = BindReport()
    for record in awaiting:
        keys = by_conversation.get(record.conversation_id, [])
        document = next((metadata.get(k) for k, p in keys if p.is_metadata), None)
        audio = {p.file_name: k for k, p in keys if not p.is_metadata}
        if not audio or not isinstance(document, dict):
            report.awaiting.append(record.conversation_id)
            continue
        named = document.get("fileName")
        audio_key = audio.get(named) if isinstance(named, str) else audio[sorted(audio)[0]]
        actual = hashes.get(audio_key) if audio_key else None
        claimed = str(document.get("sha256", "")).lower()
        if actual is None:
            report.awaiting.append(record.conversation_id)
        elif actual.lower() != claimed:
            report.mismatched.append(
                (record.conversation_id, f"{audio_key} hashes to {actual}, its metadata says {claimed or 'nothing'}")
            )
        else:
            report.bound.append((record.conversation_id, actual.lower()))
    return report


async def bind_audio(log: EvidenceLog, aws: Any, bucket: str, region: str, org_id: str) -> BindReport:
    """Append an audio_archived record for every awaiting call whose audio is archived.
    `aws` is a providers.aws AwsClient; AWS errors propagate as recon errors."""
    from reconciler.providers.aws.archive_reader import read_archive  # noqa: PLC0415 (boto3 is slow to import)

    awaiting = await asyncio.to_thread(log.awaiting_audio)
    if not awaiting:
        return BindReport()
    days = [_day(started) for _, started in awaiting]
    found = await read_archive(aws, bucket, region, org_id, min(days), max(days))
    report = plan_bindings([record for record, _ in awaiting], found.objects, found.metadata, found.hashes)
    records = {record.conversation_id: record for record, _ in awaiting}
    for conversation, audio_sha in report.bound:
        record = records[conversation]
        await asyncio.to_thread(
            log.append,
            conversation,
            record.recording_id,
            record.snapshot_sha256,
            audio_sha,
            "audio_archived",
        )
    return report


def _day(text: str) -> dt.date:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC).date()
