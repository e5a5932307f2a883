"""Chain heads of the evidence log, published to the Object-Locked archive bucket.

A head is the log's last record at publication: `{prefix}{seq:012d}.json` holding the
canonical JSON of {"seq", "hash", "recorded_at" (of that record), "records" (rows in the
log)}. The archive bucket's default Object Lock retention applies to it, so once written a
head can be neither changed nor deleted: a log whose tail was deleted, or which was
rewritten with recomputed hashes, no longer contains the published heads, and
`verify(path, heads=read_heads(...))` reports `head-mismatch`. Publishing is idempotent per
seq (an existing head object is left alone; its content for a seq never changes anyway).

`HeadPublisher` publishes every N records or T seconds; the runtime service runs it as a
task (`await publisher.run(stop_event)`); `maybe_publish` is the one decision, so tests
drive it by record count without sleeping.

S3 clients are plain boto3 S3 clients (e.g. `AwsClient(config).s3()`); failures become recon
errors through `AwsClient.call`. boto3 is imported only by the caller.

Called by: the runtime service and `recon evidence verify --heads`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ReconError, UsageError
from reconciler.runtime.evidence_chain import ChainHead, canonical_json

if TYPE_CHECKING:
    from reconciler.runtime.evidence import EvidenceLog

DEFAULT_PREFIX = "evidence/heads/"


def head_key(prefix: str, seq: int) -> str:
    return f"{prefix}{seq:012d}.json"


def current_head(log: EvidenceLog) -> ChainHead | None:
    """The head of an open EvidenceLog now, or None while it is empty."""
    last = log.last()
    if last is None:
        return None
    return ChainHead(seq=last.seq, hash=last.hash, recorded_at=last.recorded_at, records=log.count())


def publish_head(log: EvidenceLog, s3_client: Any, bucket: str, prefix: str = DEFAULT_PREFIX) -> ChainHead | None:
    """Write the log's current head to `bucket` (Object Lock default retention applies);
    None when the log is empty. Idempotent per seq."""
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    head = current_head(log)
    if head is None:
        return None
    key = head_key(prefix, head.seq)
    if AwsClient.call(
        s3_client, "head_object", bucket=bucket, absent=("404", "NoSuchKey", "NotFound"), Bucket=bucket, Key=key
    ):
        return head
    AwsClient.call(
        s3_client,
        "put_object",
        bucket=bucket,
        Bucket=bucket,
        Key=key,
        Body=canonical_json(head.to_json()),
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    return head


MAX_HEAD_BYTES = 64 * 1024
"""A published head is a few hundred bytes; a larger object is not read."""


def parse_head(text: str | bytes, where: str) -> ChainHead:
    """A head document; ReconError naming `where` when it is not one."""
    try:
        data = json.loads(text)
        head = ChainHead(
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            recorded_at=str(data["recorded_at"]),
            records=int(data["records"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ReconError(
            f"{where} is not an evidence chain head ({error})",
            next_step="heads hold {seq, hash, recorded_at, records}; check the prefix points at evidence heads",
        ) from None
    return head


def read_heads(s3_client: Any, bucket: str, prefix: str = DEFAULT_PREFIX) -> list[ChainHead]:
    """Every head published under `prefix` in `bucket`, in seq order."""
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    heads: list[ChainHead] = []
    token: str | None = None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = AwsClient.call(s3_client, "list_objects_v2", bucket=bucket, Bucket=bucket, Prefix=prefix, **extra)
        for entry in page.get("Contents", []):
            key = str(entry["Key"])
            if not key.endswith(".json"):
                continue
            found = AwsClient.call(s3_client, "get_object", bucket=bucket, Bucket=bucket, Key=key)["Body"]
            body = AwsClient.read_limited(found, MAX_HEAD_BYTES)
            if body is None:
                raise ReconError(
                    f"s3://{bucket}/{key} is larger than {MAX_HEAD_BYTES:,} bytes: not an evidence chain head",
                    next_step="check the prefix points at evidence heads",
                )
            heads.append(parse_head(body, f"s3://{bucket}/{key}"))
        if not page.get("IsTruncated"):
            break
        token = page.get("NextContinuationToken")
    return sorted(heads, key=lambda head: head.seq)


def read_heads_dir(directory: str | Path) -> list[ChainHead]:
    """Heads saved as files (`*.json`, e.g. downloaded from the bucket), in seq order."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(
            f"no folder {folder} to read chain heads from", next_step="pass --heads-dir DIR of *.json heads"
        )
    heads = [parse_head(path.read_bytes(), str(path)) for path in sorted(folder.glob("*.json"))]
    return sorted(heads, key=lambda head: head.seq)


class HeadPublisher:
    """Publishes the log's head every `every_records` new records or `every_seconds`
    (whichever comes first, and only when there is something new)."""

    def __init__(
        self,
        log: EvidenceLog,
        s3_client: Any,
        bucket: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        every_records: int = 1000,
        every_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[ReconError], None] | None = None,
    ) -> None:
        if every_records < 1 or every_seconds <= 0:
            raise ValueError("every_records must be ≥ 1 and every_seconds > 0")
        self.log, self.s3_client, self.bucket, self.prefix = log, s3_client, bucket, prefix
        self.every_records, self.every_seconds, self.poll_seconds = every_records, every_seconds, poll_seconds
        self.clock = clock
        self.on_error = on_error
        self.published_seq = 0
        self.published: list[ChainHead] = []
        self._last_time = clock()

    def due(self) -> bool:
        """Whether a head should be published now."""
        seq, _ = self.log.head()
        if seq <= self.published_seq:
            return False
        return seq - self.published_seq >= self.every_records or self.clock() - self._last_time >= self.every_seconds

    def publish(self) -> ChainHead | None:
        """Publish the current head if it is new; the head published, or None."""
        seq, _ = self.log.head()
        if seq <= self.published_seq:
            return None
        head = publish_head(self.log, self.s3_client, self.bucket, self.prefix)
        self._last_time = self.clock()
        if head is not None:
            self.published_seq = head.seq
            self.published.append(head)
        return head

    def maybe_publish(self) -> ChainHead | None:
        """Publish when due (see `due`); the head published, or None."""
        return self.publish() if self.due() else None

    def publish_safely(self, *, only_when_due: bool = False) -> ChainHead | None:
        """`publish` (or `maybe_publish`), handing a ReconError (bucket missing, S3 down) to
        `on_error` instead of raising when one is set: stamping calls must not stop because
        the archive is unreachable; the next attempt publishes the then-current head."""
        try:
            return self.maybe_publish() if only_when_due else self.publish()
        except ReconError as error:
            if self.on_error is None:
                raise
            self._last_time = self.clock()  # retry after every_seconds, not on every poll
            self.on_error(error)
            return None

    async def run(self, stop_event: asyncio.Event) -> None:
        """Until `stop_event` is set: check every `poll_seconds` and publish when due (in a
        thread: boto3 blocks). On stop, publish whatever is new."""
        while not stop_event.is_set():
            await asyncio.to_thread(functools.partial(self.publish_safely, only_when_due=True))
            try:
                await asyncio.wait_for(stop_event.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                continue
        await asyncio.to_thread(self.publish_safely)
