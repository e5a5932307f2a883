"""The evidence log: appends chain, verify finds every tampering and names it.

Tampering is done the way an insider would: through sqlite3 on the file, behind the
library's back. Each kind (edited, deleted, reordered, a deleted tail caught only by a
published head) is a table case. The pure walk is tested over rows; chain heads go to an
Object Lock bucket on a moto server over HTTP; the HeadPublisher is driven by record count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto_http import moto_server

from reconciler.runtime.evidence import (
    ChainHead,
    EvidenceLog,
    EvidenceRecord,
    HeadPublisher,
    canonical_json,
    publish_head,
    read_heads,
    snapshot_digest,
    verify,
    walk,
)
from reconciler.runtime.evidence_chain import GENESIS, genesis

REGION = "eu-west-1"
AT = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
SNAP = snapshot_digest({"symbol": "TTF M+1", "bid": 31.25, "ask": 31.4})
AUDIO = hashlib.sha256(b"opus audio").hexdigest()


def fill(path: Path, count: int = 10) -> EvidenceLog:
    log = EvidenceLog(path)
    for i in range(1, count + 1):
        status = "data_fetch_failed" if i % 4 == 0 else "attached"
        log.append(f"conv-{i}", f"rec-{i}", SNAP, AUDIO if i % 2 else None, status, AT + dt.timedelta(seconds=i))
    return log


def sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


_SWAP = "conversation_id, recording_id, snapshot_sha256, audio_sha256, status, recorded_at, prev_hash, hash"


def swap(a: int, b: int) -> tuple[str, ...]:
    """Swap two rows' content (everything but seq): the records change places."""
    return (
        f"UPDATE evidence SET seq = -1 WHERE seq = {a}",
        f"UPDATE evidence SET seq = {a} WHERE seq = {b}",
        f"UPDATE evidence SET seq = {b} WHERE seq = -1",
    )


# -- format ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"b": 1, "a": [1.5, None, True]}, b'{"a":[1.5,null,true],"b":1}', id="sorted-compact"),
        pytest.param({"k": "Zürich €"}, '{"k":"Zürich €"}'.encode(), id="utf8-not-escaped"),
        pytest.param({"x": 0.1, "y": 1e22, "z": 1.0}, b'{"x":0.1,"y":1e+22,"z":1.0}', id="float-repr"),
        pytest.param({"nested": {"z": 1, "a": 2}}, b'{"nested":{"a":2,"z":1}}', id="nested-sorted"),
    ],
)
def test_canonical_json(value: Any, expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"px": float("nan")})


def test_snapshot_digest_ignores_key_order() -> None:
    assert snapshot_digest({"a": 1, "b": 2}) == snapshot_digest({"b": 2, "a": 1})
    assert snapshot_digest({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()


def test_append_chains_records(tmp_path: Path) -> None:
    log = fill(tmp_path / "runtime.db", 3)
    first, second, third = log.records()
    assert (first.seq, first.prev_hash) == (1, genesis(log.log_id)), "record 1 chains to the log's own genesis"
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert first.hash == hashlib.sha256(genesis(log.log_id).encode() + canonical_json(first.content())).hexdigest()
    assert first.recorded_at == "2026-11-21T09:30:01.000000Z"
    assert log.head() == (3, third.hash)
    assert [r.seq for r in log.records(from_seq=2, limit=1)] == [2]
    log.close()
    assert verify(tmp_path / "runtime.db").intact


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"status": "ok"}, "status must be one of", id="bad-status"),
        pytest.param({"snapshot_sha256": "abc"}, "snapshot_sha256 must be 64", id="short-digest"),
        pytest.param({"audio_sha256": "Z" * 64}, "audio_sha256 must be 64", id="not-hex"),
    ],
)
def test_append_refuses_bad_fields(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    log = EvidenceLog(tmp_path / "runtime.db")
    args: dict[str, Any] = {"conversation_id": "c", "recording_id": "r", "snapshot_sha256": SNAP, **kwargs}
    with pytest.raises(ValueError, match=message):
        log.append(**args)
    assert log.head() == (0, genesis(log.log_id))
    log.close()


def test_empty_log_is_intact(tmp_path: Path) -> None:
    EvidenceLog(tmp_path / "runtime.db").close()
    report = verify(tmp_path / "runtime.db")
    assert (report.intact, report.records, report.head_seq) == (True, 0, 0)


# -- tampering through sqlite3 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("statements", "seq", "kind"),
    [
        pytest.param(
            (f"UPDATE evidence SET snapshot_sha256 = '{'f' * 64}' WHERE seq = 5",), 5, "edited", id="edit-snapshot"
        ),
        pytest.param(("UPDATE evidence SET status = 'attached' WHERE seq = 4",), 4, "edited", id="edit-status"),
        pytest.param(("UPDATE evidence SET audio_sha256 = NULL WHERE seq = 7",), 7, "edited", id="edit-audio-null"),
        pytest.param(("UPDATE evidence SET hash = prev_hash WHERE seq = 2",), 2, "edited", id="edit-hash-column"),
        pytest.param(("UPDATE evidence SET recording_id = 7 WHERE seq = 3",), 3, "edited", id="edit-type"),
        pytest.param(("DELETE FROM evidence WHERE seq = 5",), 5, "deleted", id="delete-middle"),
        pytest.param(("DELETE FROM evidence WHERE seq IN (3, 4)",), 3, "deleted", id="delete-two"),
        pytest.param(("DELETE FROM evidence WHERE seq = 1",), 1, "deleted", id="delete-first"),
        pytest.param(
            ("DELETE FROM evidence WHERE seq = 5", "UPDATE evidence SET seq = seq - 1 WHERE seq > 5"),
            5,
            "deleted",
            id="delete-and-renumber",
        ),
        pytest.param(swap(5, 6), 5, "reordered", id="swap-neighbours"),
        pytest.param(swap(2, 9), 2, "reordered", id="swap-distant"),
        pytest.param(swap(1, 2), 1, "reordered", id="swap-first-two"),
    ],
)
def test_verify_names_the_first_break(tmp_path: Path, statements: tuple[str, ...], seq: int, kind: str) -> None:
    path = tmp_path / "runtime.db"
    fill(path).close()
    sql(path, *statements)
    report = verify(path)
    assert report.broken is not None, report
    assert (report.broken.seq, report.broken.kind) == (seq, kind), report.broken.detail


def test_deleted_tail_is_caught_only_by_a_published_head(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    log = fill(path)
    last = log.last()
    assert last is not None
    head = ChainHead(seq=last.seq, hash=last.hash, recorded_at=last.recorded_at, records=10, log=log.log_id)
    log.close()
    sql(path, "DELETE FROM evidence WHERE seq >= 9")
    assert verify(path).intact  # the chain that is left is consistent
    report = verify(path, heads=[head])
    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (9, "head-mismatch")
    assert "records 9..10 were deleted" in report.broken.detail


def rewrite_from(path: Path, seq: int) -> None:
    """Rewrite record `seq` and recompute every hash after it: a consistent forgery."""
    db = sqlite3.connect(path)
    rows = [EvidenceRecord(*row) for row in db.execute(f"SELECT {_SEQ_COLUMNS} FROM evidence ORDER BY seq")]
    prev = rows[seq - 2].hash
    with db:
        for row in rows[seq - 1 :]:
            changed = replace(row, prev_hash=prev, conversation_id="forged" if row.seq == seq else row.conversation_id)
            prev = changed.computed_hash()
            db.execute(
                "UPDATE evidence SET conversation_id = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (changed.conversation_id, changed.prev_hash, prev, row.seq),
            )
    db.close()


_SEQ_COLUMNS = f"seq, {_SWAP}"


def test_consistent_rewrite_is_caught_by_a_published_head(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    log = fill(path)
    records = log.records()
    log.close()
    heads = [ChainHead(r.seq, r.hash, r.recorded_at, r.seq, log.log_id) for r in (records[3], records[7])]
    rewrite_from(path, 6)
    assert verify(path).intact
    report = verify(path, heads=heads)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (8, "head-mismatch")
    assert report.heads_checked == 2


# -- the pure walk over tables -----------------------------------------------------------------


def chain(count: int) -> list[EvidenceRecord]:
    rows: list[EvidenceRecord] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        draft = EvidenceRecord(seq, f"c{seq}", f"r{seq}", SNAP, None, "attached", f"t{seq}", prev, "")
        row = replace(draft, hash=draft.computed_hash())
        rows.append(row)
        prev = row.hash
    return rows


def _rehash_edit(rows: list[EvidenceRecord]) -> list[EvidenceRecord]:
    edited = replace(rows[2], status="data_fetch_failed")
    return [*rows[:2], replace(edited, hash=edited.computed_hash()), *rows[3:]]


def _drop_and_relink(rows: list[EvidenceRecord]) -> list[EvidenceRecord]:
    """Drop record 1 and renumber+rehash nothing: record 2 becomes first with a non-genesis link."""
    return [replace(r, seq=r.seq - 1) for r in rows[1:]]


@pytest.mark.parametrize(
    ("tamper", "seq", "kind"),
    [
        pytest.param(lambda rows: rows, None, None, id="intact"),
        pytest.param(lambda rows: list(reversed(rows)), None, None, id="input-order-irrelevant"),
        pytest.param(lambda rows: [*rows[:2], replace(rows[2], recording_id="x"), *rows[3:]], 3, "edited", id="edit"),
        pytest.param(_rehash_edit, 3, "edited", id="edit-with-recomputed-hash"),
        pytest.param(lambda rows: rows[:3] + rows[4:], 4, "deleted", id="gap"),
        pytest.param(_drop_and_relink, 1, "deleted", id="renumbered-after-delete"),
        pytest.param(lambda rows: rows[:-1], None, None, id="tail-gone-no-heads"),
        pytest.param(
            lambda rows: [*rows[:1], replace(rows[2], seq=2), replace(rows[1], seq=3), *rows[3:]],
            2,
            "reordered",
            id="swap",
        ),
        pytest.param(lambda rows: [*rows, replace(rows[0], seq=6)], 6, "duplicated", id="copied-to-the-end"),
    ],
)
def test_walk(
    tamper: Callable[[list[EvidenceRecord]], list[EvidenceRecord]], seq: int | None, kind: str | None
) -> None:
    report = walk(tamper(chain(5)))
    found = (report.broken.seq, report.broken.kind) if report.broken else (None, None)
    assert found == (seq, kind)


@pytest.mark.parametrize(
    ("head", "seq"),
    [
        pytest.param(lambda rows: ChainHead(3, rows[2].hash, "t3", 3), None, id="matches"),
        pytest.param(lambda rows: ChainHead(3, rows[1].hash, "t3", 3), 3, id="other-hash"),
        pytest.param(lambda rows: ChainHead(7, "e" * 64, "t7", 7), 6, id="beyond-the-end"),
    ],
)
def test_walk_heads(head: Callable[[list[EvidenceRecord]], ChainHead], seq: int | None) -> None:
    rows = chain(5)
    report = walk(rows, [head(rows)])
    assert (report.broken.seq if report.broken else None) == seq
    assert report.broken is None or report.broken.kind == "head-mismatch"


# -- concurrency -------------------------------------------------------------------------------


def test_four_threads_append_one_contiguous_chain(tmp_path: Path) -> None:
    log = EvidenceLog(tmp_path / "runtime.db")
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        for i in range(1000):
            log.append(f"{name}-{i}", f"rec-{name}-{i}", SNAP)

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.seq for r in log.records()] == list(range(1, 4001))
    log.close()
    report = verify(tmp_path / "runtime.db")
    assert (report.intact, report.records) == (True, 4000)


def test_two_connections_share_one_chain(tmp_path: Path) -> None:
    """Two EvidenceLog objects (as two processes would) on one file still make one chain."""
    first, second = EvidenceLog(tmp_path / "runtime.db"), EvidenceLog(tmp_path / "runtime.db")
    for i in range(10):
        (first if i % 2 else second).append(f"c{i}", f"r{i}", SNAP)
    first.close()
    second.close()
    assert verify(tmp_path / "runtime.db").records == 10
    assert verify(tmp_path / "runtime.db").intact


# -- chain heads in an Object Lock bucket ------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with moto_server() as url:
        client = boto3.client(
            "s3", endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        yield client
        client.close()


_buckets = iter(range(1, 1000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"evidence-heads-{next(_buckets):03d}"
    s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=True
    )
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    return name


def test_publish_and_read_heads(tmp_path: Path, s3: Any, bucket: str) -> None:
    path = tmp_path / "runtime.db"
    log = EvidenceLog(path)
    assert publish_head(log, s3, bucket) is None  # nothing to publish yet
    log.append("c1", "r1", SNAP, AUDIO, at=AT)
    first = publish_head(log, s3, bucket)
    assert publish_head(log, s3, bucket) == first  # idempotent per seq
    log.append("c2", "r2", SNAP, at=AT)
    second = publish_head(log, s3, bucket)
    assert first is not None and second is not None

    heads = read_heads(s3, bucket, log.log_id).heads
    assert heads == [first, second]
    key = f"evidence/heads/{log.log_id}/000000000002.json"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]][-1] == key
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 1
    stored = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert stored.get("ObjectLockMode") == "COMPLIANCE"  # the bucket's default retention
    assert stored.get("ChecksumSHA256")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == canonical_json(second.to_json())
    log.close()

    assert verify(path, heads).intact
    sql(path, "DELETE FROM evidence WHERE seq = 2")
    report = verify(path, read_heads(s3, bucket, log.log_id).heads)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (2, "head-mismatch")


def test_head_publisher_by_record_count(tmp_path: Path, s3: Any, bucket: str) -> None:
    now = [0.0]
    log = EvidenceLog(tmp_path / "runtime.db")
    publisher = HeadPublisher(log, s3, bucket, every_records=5, every_seconds=60, clock=lambda: now[0])
    published: list[int] = []
    for i in range(1, 13):
        log.append(f"c{i}", f"r{i}", SNAP)
        head = publisher.maybe_publish()
        if head is not None:
            published.append(head.seq)
    assert published == [5, 10]
    now[0] = 61.0  # the time trigger publishes the 2 records since
    assert publisher.maybe_publish() is not None
    assert publisher.maybe_publish() is None  # nothing new
    log.append("c13", "r13", SNAP)

    stop = asyncio.Event()
    stop.set()
    asyncio.run(publisher.run(stop))  # on stop: publish whatever is new, no waiting
    assert [h.seq for h in read_heads(s3, bucket, log.log_id).heads] == [5, 10, 12, 13]
    log.close()
