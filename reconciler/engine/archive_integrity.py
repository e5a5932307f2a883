"""Archive integrity: does the archive hold, intact, every recording the platform made?

Pure comparison (no I/O). Inputs: the conversations the platform reports for a period
(reconciler.providers.genesys.recordings), and what the archive holds for it
(reconciler.providers.aws.archive_reader): object keys → parsed keys, `_metadata.json` key →
document (None when not JSON), audio key → SHA-256 of its bytes.

One outcome per conversation, the first that applies, in this order:

    missing-recording  no audio object in the conversation's folder (or not the one the
                       metadata's fileName names)
    missing-metadata   no `_metadata.json` beside it
    bad-metadata       `_metadata.json` is not a JSON object, or a field is absent or differs
                       from the platform: conversationId, participants (the set of
                       {id, purpose, userId}), startTime, endTime (compared as instants);
                       sha256 absent or not 64 hex characters. `fields` names each one.
    hash-mismatch      the metadata's sha256 is not the SHA-256 of the audio object
    ok                 none of the above
    unexpected         in the archive, unknown to the platform in the period (informational:
                       not a gap; e.g. a conversation the platform no longer lists)

Called by: `recon verify-archive` (reconciler.cli.archive_commands); rendered by
reconciler.render.archive_integrity.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.providers.archive_layout import ArchiveKey
from reconciler.providers.genesys.recordings import Participant, PlatformConversation

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Outcome(StrEnum):
    OK = "ok"
    MISSING_RECORDING = "missing-recording"
    MISSING_METADATA = "missing-metadata"
    BAD_METADATA = "bad-metadata"
    HASH_MISMATCH = "hash-mismatch"
    UNEXPECTED = "unexpected"

    @property
    def is_gap(self) -> bool:
        return self not in (Outcome.OK, Outcome.UNEXPECTED)


GAPS = tuple(o for o in Outcome if o.is_gap)


@dataclass(frozen=True, slots=True)
class Finding:
    """The verdict on one conversation."""

    conversation_id: str
    outcome: Outcome
    start: dt.datetime | None
    folder: str
    """The conversation's archive folder ("" when nothing of it is in the archive)."""
    fields: tuple[str, ...] = ()
    """For bad-metadata: the metadata fields absent or unequal."""
    detail: str = ""


@dataclass(slots=True)
class IntegrityReport:
    bucket: str
    org_id: str
    first: dt.date
    last: dt.date
    findings: list[Finding] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        """Conversations per outcome (every outcome listed), plus `conversations` (the
        platform's) and `gaps`."""
        counted = Counter(f.outcome for f in self.findings)
        totals = {o.value: counted.get(o, 0) for o in Outcome}
        totals["conversations"] = sum(n for o, n in counted.items() if o is not Outcome.UNEXPECTED)
        totals["gaps"] = sum(counted.get(o, 0) for o in GAPS)
        return totals

    @property
    def gaps(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome.is_gap]

    @property
    def unexpected(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome is Outcome.UNEXPECTED]

    @property
    def has_gaps(self) -> bool:
        return any(f.outcome.is_gap for f in self.findings)


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _participants(value: Any) -> frozenset[Participant] | None:
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        return None
    return frozenset(
        Participant(str(p.get("id", "")), str(p.get("purpose", "")), p.get("userId") or None) for p in value
    )


def _bad_fields(conversation: PlatformConversation, document: Mapping[str, Any]) -> list[str]:
    bad = []
    if document.get("conversationId") != conversation.conversation_id:
        bad.append("conversationId")
    if _participants(document.get("participants")) != conversation.participants:
        bad.append("participants")
    if _instant(document.get("startTime")) != conversation.start:
        bad.append("startTime")
    if conversation.end is not None and _instant(document.get("endTime")) != conversation.end:
        bad.append("endTime")
    if not isinstance(document.get("sha256"), str) or not _SHA256.match(document["sha256"].lower()):
        bad.append("sha256")
    return bad


def _judge(
    conversation: PlatformConversation,
    keys: Sequence[tuple[str, ArchiveKey]],
    metadata: Mapping[str, Any],
    hashes: Mapping[str, str],
) -> Finding:
    folder = keys[0][0].rsplit("/", 1)[0] + "/" if keys else ""
    cid, start = conversation.conversation_id, conversation.start

    def finding(outcome: Outcome, detail: str, fields: Sequence[str] = ()) -> Finding:
        return Finding(cid, outcome, start, folder, tuple(fields), detail)

    meta_key = next((k for k, p in keys if p.is_metadata), None)
    document = metadata.get(meta_key) if meta_key is not None else None
    audio = {p.file_name: k for k, p in keys if not p.is_metadata}
    named = document.get("fileName") if isinstance(document, dict) else None
    if isinstance(named, str) and named:
        audio_key = audio.get(named)
        if audio_key is None:
            return finding(Outcome.MISSING_RECORDING, f"no audio object {named} (named by {meta_key})")
    elif audio:
        audio_key = audio[sorted(audio)[0]]
    else:
        return finding(Outcome.MISSING_RECORDING, "no audio object in the archive")
    if meta_key is None:
        return finding(Outcome.MISSING_METADATA, f"no _metadata.json beside {audio_key}")
    if not isinstance(document, dict):
        return finding(Outcome.BAD_METADATA, f"{meta_key} is not a JSON object", ["_metadata.json"])
    bad = _bad_fields(conversation, document)
    if bad:
        return finding(Outcome.BAD_METADATA, f"{meta_key}: {', '.join(bad)} absent or different", bad)
    actual = hashes.get(audio_key)
    if actual is None or actual.lower() != str(document["sha256"]).lower():
        return finding(
            Outcome.HASH_MISMATCH,
            f"{audio_key} hashes to {actual or '?'}, the metadata says {document['sha256']}",
        )
    return finding(Outcome.OK, "")


def compare(
    platform: Sequence[PlatformConversation],
    objects: Mapping[str, ArchiveKey],
    metadata: Mapping[str, Any],
    hashes: Mapping[str, str],
    *,
    bucket: str,
    org_id: str,
    first: dt.date,
    last: dt.date,
) -> IntegrityReport:
    """The integrity report of one period: a finding per platform conversation (in the
    platform's order), then one per conversation found only in the archive."""
    by_conversation: dict[str, list[tuple[str, ArchiveKey]]] = {}
    for key in sorted(objects):
        by_conversation.setdefault(objects[key].conversation_id, []).append((key, objects[key]))
    report = IntegrityReport(bucket, org_id, first, last)
    known: set[str] = set()
    for conversation in platform:
        known.add(conversation.conversation_id)
        keys = by_conversation.get(conversation.conversation_id, [])
        report.findings.append(_judge(conversation, keys, metadata, hashes))
    for cid in sorted(set(by_conversation) - known, key=lambda c: (by_conversation[c][0][1].hour, c)):
        keys = by_conversation[cid]
        folder = keys[0][0].rsplit("/", 1)[0] + "/"
        detail = f"{len(keys)} object(s) in the archive; the platform lists no such conversation in the period"
        report.findings.append(Finding(cid, Outcome.UNEXPECTED, keys[0][1].hour, folder, (), detail))
    return report
