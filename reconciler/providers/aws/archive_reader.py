"""Read an archive bucket's exported recordings for a period: keys, metadata and audio hashes.

`read_archive` lists the month folders of the org's export that overlap the period
(`archive_layout.month_prefixes`, never the whole bucket; ListObjectsV2 shows only current
versions, so a deleted object behind a delete marker is absent, as a reader would find it),
keeps the keys of conversations that started (by their hour folder) on the period's days,
then fetches every `_metadata.json` (at most MAX_METADATA_BYTES, parsed by the bounded
`reconciler.jsonsafe.loads`: a 100,000-deep or 10 GB document in the bucket is reported as
not JSON, never a RecursionError or an exhausted memory) and streams every other object
through SHA-256, all
concurrently on the AwsClient's bounded thread pool (an object deleted in between is
left out, as if never listed). It reports what it found; judging it is
the engine's job (reconciler.engine.archive_integrity).

Called by: `recon verify-archive` (reconciler.cli.archive_commands).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from reconciler import jsonsafe
from reconciler.providers.archive_layout import ArchiveKey, month_prefixes, parse_key
from reconciler.providers.aws.client import AwsClient

call = AwsClient.call
CHUNK = 1024 * 1024
MAX_METADATA_BYTES = 1024 * 1024
"""The largest `_metadata.json` read: the export writes a few kilobytes per conversation; a
larger one is not read (it is reported like an unreadable one)."""
_GONE = object()


@dataclass(slots=True)
class ArchiveContents:
    """What one read of the archive found for a period.

    `objects`: every exported object's key → its parsed parts; `metadata`: each
    `_metadata.json` key → the parsed document, or None when it is not JSON; `hashes`: each
    audio key → the SHA-256 (hex) of its current version's bytes."""

    objects: dict[str, ArchiveKey] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    requests: int = 0


def _list(client: AwsClient, bucket: str, region: str, prefix: str) -> list[str]:
    s3 = client.s3(region)
    keys: list[str] = []
    token: str | None = None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = call(s3, "list_objects_v2", bucket=bucket, Bucket=bucket, Prefix=prefix, **extra)
        keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return keys


def _get(client: AwsClient, bucket: str, region: str, key: str) -> Any:
    """The object's streaming body; None when it vanished since the listing."""
    found = call(client.s3(region), "get_object", bucket=bucket, absent=("NoSuchKey",), Bucket=bucket, Key=key)
    return None if found is None else found["Body"]


def _read_metadata(client: AwsClient, bucket: str, region: str, key: str) -> Any:
    body = _get(client, bucket, region, key)
    if body is None:
        return _GONE
    raw = AwsClient.read_limited(body, MAX_METADATA_BYTES)
    if raw is None:
        return None
    try:
        return jsonsafe.loads(raw, what=key, max_bytes=MAX_METADATA_BYTES)
    except jsonsafe.JsonProblem:
        return None


def _hash(client: AwsClient, bucket: str, region: str, key: str) -> str | None:
    body = _get(client, bucket, region, key)
    if body is None:
        return None
    digest = hashlib.sha256()
    try:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()


async def read_archive(
    client: AwsClient, bucket: str, region: str, org_id: str, first: dt.date, last: dt.date
) -> ArchiveContents:
    """The exported recordings of conversations that started from `first` to `last`
    (inclusive, UTC days) under `org_id`'s folder of `bucket`. AWS errors propagate."""
    before = client.requests
    listed = await asyncio.gather(
        *(client.run(_list, client, bucket, region, p) for p in month_prefixes(org_id, first, last))
    )
    contents = ArchiveContents()
    for key in (k for keys in listed for k in keys):
        parsed = parse_key(key)
        if parsed is not None and parsed.org_id == org_id and first <= parsed.hour.date() <= last:
            contents.objects[key] = parsed
    metadata_keys = [k for k, p in contents.objects.items() if p.is_metadata]
    audio_keys = [k for k, p in contents.objects.items() if not p.is_metadata]
    documents, hashes = await asyncio.gather(
        asyncio.gather(*(client.run(_read_metadata, client, bucket, region, k) for k in metadata_keys)),
        asyncio.gather(*(client.run(_hash, client, bucket, region, k) for k in audio_keys)),
    )
    for key, document in zip(metadata_keys, documents, strict=True):
        if document is _GONE:
            del contents.objects[key]
        else:
            contents.metadata[key] = document
    for key, digest in zip(audio_keys, hashes, strict=True):
        if digest is None:
            del contents.objects[key]
        else:
            contents.hashes[key] = digest
    contents.requests = client.requests - before
    return contents
