"""Chain heads of the evidence log, published to the Object-Locked archive bucket, keyed by
the log's identity.

A head is the log's last record at publication: `{prefix}{log_id}/{seq:012d}.json` holding
the canonical JSON of {"log", "seq", "hash", "recorded_at" (of that record), "records" (rows
in the log)}. The log id is in the key and the body, so two logs publishing to one bucket
keep apart (heads keyed by seq alone overwrote each other's and raised false alarms). The
bucket's default Object Lock retention applies, so once written a head can be neither
changed nor deleted: a log whose tail was deleted, that was rolled back to an older copy, or
rewritten with recomputed hashes, no longer contains its published heads, and
`verify(path, heads)` reports `head-mismatch`. Publishing is idempotent per seq, and a
publisher that finds a head already published for its seq with another hash raises instead
(the log diverged from what it published: the alert says so at once). Before its first
publication a publisher also looks for a head of its log beyond the log's end (one listing):
a tail cut, or a rollback to an older copy, while the runtime was stopped is alerted at start.
As the runtime publishes at exit too, only records written after the last head before a crash
can be cut unseen (reconciler.runtime.evidence also refuses to append once a record it wrote
is gone: a cut while it runs stops it).

Heads published before heads were keyed by log (`{prefix}{seq:012d}.json`, no `log` in the
body) are read only for a format-2 log (one that has no id yet); for a log with an id they
are counted and ignored, as are the heads of other logs.

`HeadPublisher` publishes every N records or T seconds; the runtime service runs it as a
task (`await publisher.run(stop_event)`); `maybe_publish` is the one decision, so tests
drive it by record count without sleeping.

Bodies read from S3 or from files are bounded (MAX_HEAD_BYTES, jsonsafe) and checked field by
field; a bad one is an error naming where it was read. S3 clients are plain boto3 clients
(e.g. `AwsClient(config).s3()`); failures become recon errors through `AwsClient.call`.

Called by: the runtime service, `recon evidence verify --heads` and `recon search --heads`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import jsonsafe, safefile
from reconciler.errors import ReconError, UsageError
from reconciler.runtime.evidence_chain import HEX64, LOG_ID, ChainHead, canonical_json

if TYPE_CHECKING:
    from reconciler.runtime.evidence import EvidenceLog

DEFAULT_PREFIX = "evidence/heads/"
MAX_HEAD_BYTES = 4096
"""A head is about 200 bytes."""
MAX_HEAD_FILES = 1_000_000
"""Files read from a heads folder at most (more is an error, not an exhausted machine)."""


def head_key(prefix: str, log_id: str, seq: int) -> str:
    return f"{prefix}{log_id}/{seq:012d}.json"


@dataclass(slots=True)
class PublishedHeads:
    """Heads read from one place: `heads` (those read: this log's, or every head of a
    folder), `others` (heads of other logs seen but not read: log id -> count), `legacy`
    (heads keyed by seq only, not read), `source` (where)."""

    heads: list[ChainHead] = field(default_factory=list)
    others: dict[str, int] = field(default_factory=dict)
    legacy: int = 0
    source: str = ""


def current_head(log: EvidenceLog) -> ChainHead | None:
    """The head of an open EvidenceLog now, or None while it is empty."""
    last = log.last()
    if last is None:
        return None
    return ChainHead(seq=last.seq, hash=last.hash, recorded_at=last.recorded_at, records=log.count(), log=log.log_id)


def publish_head(log: EvidenceLog, s3_client: Any, bucket: str, prefix: str = DEFAULT_PREFIX) -> ChainHead | None:
    """Write the log's current head to `bucket` (Object Lock default retention applies);
    None when the log is empty. Idempotent per seq; ReconError when a head published for
    this seq has another hash."""
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    head = current_head(log)
    if head is None:
        return None
    key = head_key(prefix, log.log_id, head.seq)
    if AwsClient.call(
        s3_client, "head_object", bucket=bucket, absent=("404", "NoSuchKey", "NotFound"), Bucket=bucket, Key=key
    ):
        published = _get_head(s3_client, bucket, key)
        if published.hash != head.hash or published.log != head.log:
            raise ReconError(
                f"the evidence log {log.path} no longer matches the chain head published at s3://{bucket}/{key}: "
                f"record {head.seq} was rewritten, or the file is an older copy of the log",
                next_step="keep the file as found and run `recon evidence verify --heads`",
            )
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


def head_beyond(s3_client: Any, bucket: str, log_id: str, seq: int, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The key of a head of `log_id` published for a seq after `seq`, or None (one listing
    of at most one key: the keys' zero-padded seqs sort as numbers)."""
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    page = AwsClient.call(
        s3_client,
        "list_objects_v2",
        bucket=bucket,
        Bucket=bucket,
        Prefix=f"{prefix}{log_id}/",
        StartAfter=head_key(prefix, log_id, seq),
        MaxKeys=1,
    )
    contents = page.get("Contents") or []
    return str(contents[0]["Key"]) if contents else None


def parse_head(text: bytes, where: str) -> ChainHead:
    """A head document; ReconError naming `where` when it is not one."""
    try:
        data = jsonsafe.loads(text, what=where, max_bytes=MAX_HEAD_BYTES)
    except jsonsafe.JsonProblem as problem:
        raise _not_a_head(where, str(problem)) from None
    if not isinstance(data, dict):
        raise _not_a_head(where, "not a JSON object")
    seq, digest, recorded_at, records, log = (data.get(k) for k in ("seq", "hash", "recorded_at", "records", "log"))
    if type(seq) is not int or seq < 1:
        raise _not_a_head(where, "seq must be a whole number from 1")
    if not isinstance(digest, str) or not HEX64.fullmatch(digest):
        raise _not_a_head(where, "hash must be 64 lowercase hex characters")
    if not isinstance(recorded_at, str) or type(records) is not int or records < 0:
        raise _not_a_head(where, "recorded_at must be text and records a whole number")
    if log is not None and not (isinstance(log, str) and LOG_ID.fullmatch(log)):
        raise _not_a_head(where, "log must be a log id (32 hex characters)")
    return ChainHead(seq=seq, hash=digest, recorded_at=recorded_at, records=records, log=log, source=where)


def _not_a_head(where: str, why: str) -> ReconError:
    return ReconError(
        f"{where} is not an evidence chain head ({why})",
        next_step="heads hold {log, seq, hash, recorded_at, records}; check the prefix or folder points at heads",
    )


def _get_head(s3_client: Any, bucket: str, key: str) -> ChainHead:
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    body = AwsClient.call(s3_client, "get_object", bucket=bucket, Bucket=bucket, Key=key)["Body"]
    try:
        text = body.read(MAX_HEAD_BYTES + 1)
    finally:
        body.close()
    if len(text) > MAX_HEAD_BYTES:
        raise _not_a_head(f"s3://{bucket}/{key}", f"larger than {MAX_HEAD_BYTES} bytes")
    return parse_head(text, f"s3://{bucket}/{key}")


def read_heads(s3_client: Any, bucket: str, log_id: str | None, prefix: str = DEFAULT_PREFIX) -> PublishedHeads:
    """The heads log `log_id` published under `prefix` in `bucket` (log None: a format-2
    log's, keyed by seq only), in seq order, and what else is there."""
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    found = PublishedHeads(source=f"s3://{bucket}/{prefix}")
    token: str | None = None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = AwsClient.call(s3_client, "list_objects_v2", bucket=bucket, Bucket=bucket, Prefix=prefix, **extra)
        for entry in page.get("Contents", []):
            key = str(entry["Key"])
            if not key.endswith(".json"):
                continue
            folder, _, _ = key[len(prefix) :].rpartition("/")
            if folder == (log_id or ""):
                found.heads.append(_get_head(s3_client, bucket, key))
            elif folder:
                found.others[folder] = found.others.get(folder, 0) + 1
            else:
                found.legacy += 1
        if not page.get("IsTruncated"):
            break
        token = page.get("NextContinuationToken")
    found.heads.sort(key=lambda head: head.seq)
    return found


def read_heads_dir(directory: str | Path) -> PublishedHeads:
    """Heads saved as files (`*.json` in the folder and below, e.g. the bucket's prefix
    downloaded), in seq order: of every log (the walk uses its own log's)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(
            f"no folder {folder} to read chain heads from", next_step="pass --heads-dir DIR of *.json heads"
        )
    found = PublishedHeads(source=str(folder))
    for count, path in enumerate(sorted(folder.rglob("*.json")), start=1):
        if count > MAX_HEAD_FILES:
            raise UsageError(
                f"{folder} holds more than {MAX_HEAD_FILES:,} *.json files",
                next_step="pass the folder of one log's heads",
            )
        try:
            text = safefile.read_bytes(path, MAX_HEAD_BYTES, what="a chain head")
        except OSError as error:
            raise ReconError(str(error), next_step="a heads folder holds only head files") from None
        found.heads.append(parse_head(text, str(path)))
    found.heads.sort(key=lambda head: head.seq)
    return found


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
        self._checked = False

    def check_start(self) -> None:
        """Once, before the first publication: ReconError when this log has a head published
        beyond its end (its tail was deleted, or the file was rolled back to an older copy,
        while the runtime was not running)."""
        if self._checked:
            return
        seq, _ = self.log.head()
        key = head_beyond(self.s3_client, self.bucket, self.log.log_id, seq, self.prefix)
        self._checked = True  # once listed: an unreachable bucket is checked again next time
        if key is not None:
            raise ReconError(
                f"the evidence log {self.log.path} ends at seq {seq}, but s3://{self.bucket}/{key} was published "
                "for a later record: records were deleted, or the file is an older copy of the log",
                next_step="keep the file as found and run `recon evidence verify --heads`",
            )

    def due(self) -> bool:
        """Whether a head should be published now."""
        seq, _ = self.log.head()
        if seq <= self.published_seq:
            return False
        return seq - self.published_seq >= self.every_records or self.clock() - self._last_time >= self.every_seconds

    def publish(self) -> ChainHead | None:
        """Publish the current head if it is new; the head published, or None (`check_start`
        first, once)."""
        self.check_start()
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
        """Publish when due (see `due`); the head published, or None (`check_start` first, once)."""
        self.check_start()
        return self.publish() if self.due() else None

    def publish_safely(self, *, only_when_due: bool = False) -> ChainHead | None:
        """`publish` (or `maybe_publish`), handing a ReconError (bucket missing, S3 down, the
        log cut below or diverged from a published head) to `on_error` instead of raising when one is set:
        stamping calls must not stop because the archive is unreachable; the next attempt
        publishes the then-current head."""
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
