"""Group commit of evidence records: `EvidenceLog.append_many` (one transaction, chained as one
by one, all or nothing) and `BatchedAppender` (records that arrive during a commit share the
next one, in call order; a failed commit fails only its own callers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
from pathlib import Path

import pytest

from reconciler.runtime.evidence import Entry, EvidenceLog, verify
from reconciler.runtime.evidence_batch import BatchedAppender

AT = dt.datetime(2026, 10, 27, 14, 30, tzinfo=dt.UTC)


def entry(n: int, *, status: str = "attached") -> Entry:
    document = f'{{"market_snapshot":{{"n":{n}}},"status":"{status}"}}'.encode()
    return Entry(
        f"conv-{n}",
        f"rec-{n}",
        hashlib.sha256(document).hexdigest(),
        status=status,
        at=AT + dt.timedelta(milliseconds=n),
        document=document,
        call_started=AT,
    )


def test_append_many_chains_exactly_as_appending_one_by_one(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path / "one.db") as one, EvidenceLog(tmp_path / "many.db") as many:
        singles = [
            one.append(
                e.conversation_id,
                e.recording_id,
                e.snapshot_sha256,
                None,
                e.status,
                e.at,
                document=e.document,
                call_started=e.call_started,
            )
            for e in map(entry, range(5))
        ]
        batch = many.append_many([entry(n) for n in range(5)])
        assert one.log_id != many.log_id, "each log has its own id (and so its own genesis)"
    assert [record.content() for record in batch] == [record.content() for record in singles]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(batch))
    assert verify(tmp_path / "many.db").intact and verify(tmp_path / "one.db").intact


@pytest.mark.parametrize(
    "bad",
    [
        Entry("conv-x", "rec-x", "not-a-digest"),
        Entry("conv-x", "rec-x", "0" * 64, status="maybe"),
        Entry("conv-x", "rec-x", "0" * 64, document=b"{}"),
    ],
    ids=["malformed-digest", "unknown-status", "document-not-what-the-digest-says"],
)
def test_append_many_writes_nothing_when_one_entry_is_bad(tmp_path: Path, bad: Entry) -> None:
    with EvidenceLog(tmp_path / "runtime.db") as log:
        log.append_many([entry(1)])
        with pytest.raises(ValueError):
            log.append_many([entry(2), bad, entry(3)])
        assert log.count() == 1


def test_concurrent_appends_share_commits_and_keep_call_order(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path / "runtime.db") as log:
        appender = BatchedAppender(log)

        async def scenario() -> list[int]:
            records = await asyncio.gather(*(appender.append(entry(n)) for n in range(300)))
            return [r.seq for r in records]

        seqs = asyncio.run(scenario())
        assert seqs == list(range(1, 301))  # each caller got its own record, chained in call order
        assert [r.conversation_id for r in log.records()] == [f"conv-{n}" for n in range(300)]
        assert appender.commits < 300  # records that arrived during a commit shared the next
    assert verify(tmp_path / "runtime.db").intact


def test_a_single_append_is_committed_at_once(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path / "runtime.db") as log:
        appender = BatchedAppender(log)
        record = asyncio.run(appender.append(entry(7)))
        assert (record.seq, log.count(), appender.commits) == (1, 1, 1)


def test_a_failed_commit_fails_its_own_callers_only(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path / "runtime.db") as log:
        appender = BatchedAppender(log, max_batch=2)

        async def scenario() -> list[object]:
            calls = [appender.append(entry(0)), appender.append(Entry("bad", "r", "nope")), appender.append(entry(2))]
            return list(await asyncio.gather(*calls, return_exceptions=True))

        first, second, third = asyncio.run(scenario())
        assert isinstance(first, ValueError) and isinstance(second, ValueError)  # one batch of two
        assert not isinstance(third, BaseException) and third.conversation_id == "conv-2"
        assert [r.conversation_id for r in log.records()] == ["conv-2"]
