"""The sandbox platform's S3 recording export: write each conversation's recording to a bucket.

Genesys Cloud's recording export (the "AWS S3 recording bulk actions" integration) writes, per
recording,

    {orgId}/year=YYYY/month=MM/day=DD/hour=HH/conversation_id={conversationId}/{recordingId}.opus
    .../conversation_id={conversationId}/_metadata.json

(UTC, the conversation's start hour). `_metadata.json` is
`{"conversationId", "recordingId", "participants": [{"id", "purpose", "userId"?, "queueId"?}],
"startTime", "endTime", "fileName", "sha256"}` with `sha256` the hex digest of the audio bytes
(fields beyond conversationId/participants/start/end are this project's reading, UNCONFIRMED).

This module writes that layout from its own code on purpose: recon's reader
(reconciler.providers.archive_layout) must not share a bug with the platform it checks. The
audio is deterministic pseudo-audio (an Ogg-looking header and 4 KiB of SHAKE-256 output of
the conversation id), the recording id a UUID5 of the conversation id, and the participants
are those the analytics details query reports (reconciler.sandbox.analytics), so a verifier
can compare the two. Uploads run on a small thread pool through one boto3 client.

Called by: reconciler.sandbox.genesys_server (`POST /api/v2/sandbox/export`). Imports only
the stdlib, boto3 (lazily: slow to import) and reconciler.sandbox siblings.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from reconciler.sandbox.analytics import conversation_detail
from reconciler.sandbox.wire import JsonObj, bad_request, parse_iso, require_object

AUDIO_BYTES = 4096
UPLOAD_WORKERS = 16
METADATA_NAME = "_metadata.json"


@dataclass(frozen=True, slots=True)
class ExportWindow:
    """Conversations that started in [start, end) are exported; None ends are open."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)


def parse_request(body: Any) -> tuple[str, ExportWindow]:
    """`{"bucket", "from"?: YYYY-MM-DD, "to"?: YYYY-MM-DD}` (whole UTC days, `to` inclusive)."""
    body = require_object(body)
    bucket = body.get("bucket")
    if not isinstance(bucket, str) or not bucket.strip():
        raise bad_request("bucket is required (the archive bucket's name)")

    def day(field: str) -> datetime | None:
        value = body.get(field)
        if value is None:
            return None
        try:
            parsed = date.fromisoformat(str(value))
        except ValueError:
            raise bad_request(f"{field} must be a date YYYY-MM-DD, got {value!r}") from None
        return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)

    start, last = day("from"), day("to")
    end = last + timedelta(days=1) if last is not None else None
    if start is not None and end is not None and start >= end:
        raise bad_request("from must not be after to")
    return bucket, ExportWindow(start, end)


def recording_id(conversation_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{conversation_id}:recording"))


def audio_bytes(conversation_id: str) -> bytes:
    """Deterministic pseudo-audio for one conversation (a few KiB)."""
    return b"OggS\x00\x02" + hashlib.shake_256(f"sandbox-audio:{conversation_id}".encode()).digest(AUDIO_BYTES)


def folder(org_id: str, started: datetime, conversation_id: str) -> str:
    at = started.astimezone(UTC)
    return (
        f"{org_id}/year={at.year:04d}/month={at.month:02d}/day={at.day:02d}/hour={at.hour:02d}/"
        f"conversation_id={conversation_id}/"
    )


def recording_objects(conversation: JsonObj, queue_names: Mapping[str, str], org_id: str) -> list[tuple[str, bytes]]:
    """(key, bytes) of the audio object and its `_metadata.json`, for one stored conversation."""
    detail = conversation_detail(conversation, dict(queue_names))
    conversation_id = str(conversation["id"])
    audio = audio_bytes(conversation_id)
    recording = recording_id(conversation_id)
    file_name = f"{recording}.opus"
    participants: list[JsonObj] = []
    for p in detail["participants"]:
        entry: JsonObj = {"id": p["participantId"], "purpose": p["purpose"]}
        if p.get("userId"):
            entry["userId"] = p["userId"]
        if p["purpose"] == "acd":
            entry["queueId"] = conversation["queueId"]
        participants.append(entry)
    metadata = {
        "conversationId": conversation_id,
        "recordingId": recording,
        "participants": participants,
        "startTime": conversation["startTime"],
        "endTime": conversation["endTime"],
        "fileName": file_name,
        "sha256": hashlib.sha256(audio).hexdigest(),
    }
    prefix = folder(org_id, parse_iso(str(conversation["startTime"])), conversation_id)
    return [(prefix + file_name, audio), (prefix + METADATA_NAME, json.dumps(metadata, indent=1).encode())]


def _s3_client(s3: Mapping[str, Any]) -> Any:
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 (slow to import; only the export needs it)
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

    return boto3.client(
        "s3",
        endpoint_url=str(s3["url"]),
        region_name=str(s3.get("region") or "eu-west-1"),
        aws_access_key_id=str(s3.get("accessKeyId")),
        aws_secret_access_key=str(s3.get("secretAccessKey")),
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=UPLOAD_WORKERS + 4),
    )


def export_recordings(
    conversations: Sequence[JsonObj],
    queue_names: Mapping[str, str],
    *,
    s3: Mapping[str, Any],
    bucket: str,
    org_id: str,
    window: ExportWindow,
) -> int:
    """Upload the recordings of the conversations that started in `window`; how many.

    `s3` is the daemon's endpoints entry {url, accessKeyId, secretAccessKey, region}. boto3's
    errors propagate (the caller turns them into HTTP answers)."""
    chosen = [c for c in conversations if window.contains(parse_iso(str(c["startTime"])))]
    objects = [o for c in chosen for o in recording_objects(c, queue_names, org_id)]
    client = _s3_client(s3)
    client.head_bucket(Bucket=bucket)  # a clear NoSuchBucket / 404 before any upload
    try:
        with ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="sandbox-export") as pool:
            for done in [pool.submit(client.put_object, Bucket=bucket, Key=k, Body=b) for k, b in objects]:
                done.result()
    finally:
        client.close()
    return len(chosen)
