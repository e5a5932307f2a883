"""S3 object legal holds on exported recordings: find the object versions of a set of
conversations in an archive bucket, read their legal-hold status, turn it ON or OFF.

Finding versions never lists a whole bucket when a period is known: one
`ListObjectsV2(Delimiter="/")` names the org folders, then one `ListObjectVersions` per
month folder of the period (reconciler.providers.archive_layout.month_prefixes) per org
folder; with no start date the org folder is listed whole. Keys that are not exported
recordings (archive_layout.parse_key → None) and delete markers are skipped. `ArchiveIndex`
caches listings for one read pass (plan, drift); a month folder already covered by a
cached listing of its org folder is filtered from it instead of listed again.

Status reads (`GetObjectLegalHold`) and writes (`PutObjectLegalHold`) are one request per
version, run concurrently on the AwsClient's bounded pool in chunks of BATCH awaited
together. No legal hold at all (S3: NoSuchObjectLockConfiguration; moto: an empty
LegalHold) reads as OFF. Writing ON twice is harmless, so every write is idempotent.

Called by: reconciler.providers.archive_holds (the archive side of LegalHold).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.providers.archive_layout import month_prefixes, parse_key
from reconciler.providers.aws.bucket_shape import region_from_location
from reconciler.providers.aws.client import AwsClient

call = AwsClient.call

BATCH = 100
"""Legal-hold reads or writes awaited together (the pool bounds how many run at once)."""
NO_HOLD_CODES = ("NoSuchObjectLockConfiguration",)


@dataclass(frozen=True, slots=True)
class ArchivedVersion:
    """One object version of an exported recording (audio or _metadata.json)."""

    key: str
    version_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class Period:
    """The days a hold's scope covers: `first` None = from the beginning; `last` inclusive."""

    first: dt.date | None
    last: dt.date

    @classmethod
    def of(cls, scope: Mapping[str, Any] | None, today: dt.date) -> Period:
        """A LegalHold scope's period (`from`, `to` as ISO dates; an open `to`, or one after
        today, is today: nothing is archived for days to come, and a hold "to 2199-12-31"
        must not list two centuries of month folders)."""
        scope = scope or {}
        first = dt.date.fromisoformat(str(scope["from"])) if scope.get("from") else None
        last = dt.date.fromisoformat(str(scope["to"])) if scope.get("to") else today
        return cls(first, min(last, today))


# -- sync calls, run in the client's pool ------------------------------------------------


def bucket_region(client: AwsClient, bucket: str) -> str | None:
    """The region `bucket` lives in, or None when it does not exist."""
    location = call(client.s3(), "get_bucket_location", bucket=bucket, absent=("NoSuchBucket",), Bucket=bucket)
    return None if location is None else region_from_location(location.get("LocationConstraint"))


def org_folders(client: AwsClient, bucket: str, region: str) -> list[str] | None:
    """The top-level folders of `bucket` ("org/"), or None when the bucket does not exist."""
    s3 = client.s3(region)
    params: dict[str, Any] = {"Bucket": bucket, "Delimiter": "/"}
    folders: list[str] = []
    while True:
        page = call(s3, "list_objects_v2", bucket=bucket, absent=("NoSuchBucket",), **params)
        if page is None:
            return None
        folders += [str(p["Prefix"]) for p in page.get("CommonPrefixes") or [] if p.get("Prefix")]
        if not page.get("IsTruncated"):
            return folders
        params = {"Bucket": bucket, "Delimiter": "/", "ContinuationToken": page["NextContinuationToken"]}


def list_versions(client: AwsClient, bucket: str, region: str, prefix: str) -> list[ArchivedVersion]:
    """Every version (no delete markers) of an exported recording under `prefix`."""
    s3 = client.s3(region)
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    found: list[ArchivedVersion] = []
    while True:
        page = call(s3, "list_object_versions", bucket=bucket, absent=("NoSuchBucket",), **params)
        if page is None:
            return found
        for version in page.get("Versions") or []:
            parsed = parse_key(str(version["Key"]))
            if parsed is not None:
                found.append(ArchivedVersion(str(version["Key"]), str(version["VersionId"]), parsed.conversation_id))
        if not page.get("IsTruncated"):
            return found
        params = {
            "Bucket": bucket,
            "Prefix": prefix,
            "KeyMarker": page["NextKeyMarker"],
            "VersionIdMarker": page["NextVersionIdMarker"],
        }


def legal_hold_on(client: AwsClient, bucket: str, region: str, version: ArchivedVersion) -> bool:
    """Whether `version` is under legal hold (no hold configured at all reads as OFF)."""
    answer = call(
        client.s3(region),
        "get_object_legal_hold",
        bucket=bucket,
        absent=NO_HOLD_CODES,
        Bucket=bucket,
        Key=version.key,
        VersionId=version.version_id,
    )
    return bool(answer and (answer.get("LegalHold") or {}).get("Status") == "ON")


def put_legal_hold(client: AwsClient, bucket: str, region: str, version: ArchivedVersion, on: bool) -> None:
    call(
        client.s3(region),
        "put_object_legal_hold",
        bucket=bucket,
        Bucket=bucket,
        Key=version.key,
        VersionId=version.version_id,
        LegalHold={"Status": "ON" if on else "OFF"},
    )


# -- async, over the pool ------------------------------------------------------------------


class ArchiveIndex:
    """Listings of archived recordings for one read pass (drop it to read afresh).

    Not for concurrent use on one bucket (two callers would both list a folder): callers
    read different buckets concurrently and one bucket's holds one after another."""

    def __init__(self, client: AwsClient) -> None:
        self.client = client
        self._folders: dict[str, list[str] | None] = {}
        self._regions: dict[str, str | None] = {}
        self._listings: dict[tuple[str, str], list[ArchivedVersion]] = {}

    async def region(self, bucket: str, known: str | None = None) -> str | None:
        """`known` when given (the manifest's region), else the bucket's location; None
        when the bucket does not exist."""
        if known is not None:
            return known
        if bucket not in self._regions:
            self._regions[bucket] = await self.client.run(bucket_region, self.client, bucket)
        return self._regions[bucket]

    async def _org_folders(self, bucket: str, region: str) -> list[str] | None:
        if bucket not in self._folders:
            self._folders[bucket] = await self.client.run(org_folders, self.client, bucket, region)
        return self._folders[bucket]

    async def _listing(self, bucket: str, region: str, prefix: str) -> list[ArchivedVersion]:
        cached = self._listings.get((bucket, prefix))
        if cached is not None:
            return cached
        parent = next((p for (b, p) in self._listings if b == bucket and prefix.startswith(p)), None)
        if parent is not None:
            found = [v for v in self._listings[(bucket, parent)] if v.key.startswith(prefix)]
        else:
            found = await self.client.run(list_versions, self.client, bucket, region, prefix)
        self._listings[(bucket, prefix)] = found
        return found

    async def versions(
        self, bucket: str, region: str, periods: Iterable[Period]
    ) -> dict[str, list[ArchivedVersion]] | None:
        """The versions of exported recordings in `bucket` whose folders fall in any of
        `periods`, by conversation id; None when the bucket does not exist."""
        folders = await self._org_folders(bucket, region)
        if folders is None:
            return None
        prefixes: set[str] = set()
        for period in periods:
            for folder in folders:
                if period.first is None:
                    prefixes.add(folder)
                else:
                    prefixes.update(month_prefixes(folder.rstrip("/"), period.first, period.last))
        # Whole org folders first, so month folders below them are filtered, not listed.
        wholes = sorted(p for p in prefixes if p in folders)
        months = sorted(p for p in prefixes if p not in folders)
        listings = list(await asyncio.gather(*(self._listing(bucket, region, p) for p in wholes)))
        listings += await asyncio.gather(*(self._listing(bucket, region, p) for p in months))
        by_conversation: dict[str, dict[tuple[str, str], ArchivedVersion]] = {}
        for listing in listings:
            for version in listing:
                by_conversation.setdefault(version.conversation_id, {})[(version.key, version.version_id)] = version
        return {conversation: list(found.values()) for conversation, found in by_conversation.items()}


async def read_holds(client: AwsClient, bucket: str, region: str, versions: Sequence[ArchivedVersion]) -> list[bool]:
    """The legal-hold status of each of `versions` (True = ON), in order."""
    out: list[bool] = []
    for start in range(0, len(versions), BATCH):
        chunk = versions[start : start + BATCH]
        out += await asyncio.gather(*(client.run(legal_hold_on, client, bucket, region, v) for v in chunk))
    return out


async def set_holds(client: AwsClient, bucket: str, region: str, versions: Sequence[ArchivedVersion], on: bool) -> int:
    """Set the legal hold of every one of `versions` ON (or OFF); returns how many were written."""
    for start in range(0, len(versions), BATCH):
        chunk = versions[start : start + BATCH]
        await asyncio.gather(*(client.run(put_legal_hold, client, bucket, region, v, on) for v in chunk))
    return len(versions)
