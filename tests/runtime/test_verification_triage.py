"""Triage tags on capture-verification findings (reconciler.runtime.verification.triage): which
keys and tags are accepted, the tag-fits-verdict table, current vs history (append-only: a
re-tag or a clear adds an event, never rewrites one), persistence, and sharing the runtime's
SQLite file with the cursor store.

Hermetic: temporary SQLite files only.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import EXIT_ERROR, ReconError
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import Cdr, Verdict
from reconciler.runtime.verification.triage import (
    EXCLUDING,
    FITS,
    Triage,
    TriageError,
    TriageStore,
    TriageTag,
    parse_key,
)

AT = dt.datetime(2026, 11, 21, 9, 30, 0, 123456, tzinfo=dt.UTC)
NOTE = "checked the turret log"
BY = "a.reviewer"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TriageStore]:
    with TriageStore(tmp_path / ".recon" / "runtime.db") as opened:
        yield opened


@pytest.mark.parametrize(
    ("key", "verdict", "finding_id"),
    [
        pytest.param("not_recorded:CDR-1", Verdict.NOT_RECORDED, "CDR-1", id="not_recorded"),
        pytest.param("partial:CDR-2", Verdict.PARTIAL, "CDR-2", id="partial"),
        pytest.param("recorded_without_cdr:rec-9", Verdict.RECORDED_WITHOUT_CDR, "rec-9", id="recorded_without_cdr"),
        pytest.param("partial:a:b", Verdict.PARTIAL, "a:b", id="id-may-contain-a-colon"),
        pytest.param("partial:" + "x" * 256, Verdict.PARTIAL, "x" * 256, id="id-of-256-chars"),
    ],
)
def test_keys_accepted(key: str, verdict: Verdict, finding_id: str) -> None:
    assert parse_key(key) == (verdict, finding_id)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param("pending:x", "no verdict yet", id="pending-refused-wait-for-grace"),
        pytest.param("verified:x", "not a finding", id="verified-refused-not-a-finding"),
        pytest.param("exempt:x", "declared exemption", id="exempt-refused-already-declared"),
        pytest.param("not_recorded:", "no id", id="empty-id"),
        pytest.param("missed:x", "not a verdict", id="unknown-verdict"),
        pytest.param("CDR-1", "no ':'", id="no-colon"),
        pytest.param("partial:" + "x" * 257, "at most 256", id="id-too-long"),
        pytest.param("partial:a\nb", "control character", id="control-character"),
        pytest.param("partial: a", "spaces", id="leading-space"),
    ],
)
def test_keys_refused(key: str, reason: str) -> None:
    with pytest.raises(TriageError) as raised:
        parse_key(key)
    assert reason in str(raised.value)
    assert raised.value.next_step, "every refusal says what to do next"
    assert raised.value.exit_code == EXIT_ERROR


def test_the_fits_table_covers_every_tag() -> None:
    assert set(FITS) == set(TriageTag)
    assert {TriageTag.FALSE_POSITIVE, TriageTag.TEST_CALL, TriageTag.MAINTENANCE_WINDOW} == EXCLUDING


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        pytest.param("not_recorded:c", TriageTag.MISSING_RECORDING, id="missing-recording-on-not_recorded"),
        pytest.param("partial:c", TriageTag.MISSING_RECORDING, id="missing-recording-on-partial"),
        pytest.param("recorded_without_cdr:r", TriageTag.MISSING_CDR, id="missing-cdr-on-recorded_without_cdr"),
        *(
            pytest.param(f"{verdict}:x", tag, id=f"{tag}-on-{verdict}")
            for tag in sorted(EXCLUDING)
            for verdict in ("not_recorded", "partial", "recorded_without_cdr")
        ),
    ],
)
def test_tag_fits_verdict(store: TriageStore, key: str, tag: TriageTag) -> None:
    triage = store.set(key, tag, note=NOTE, reviewer=BY)
    assert triage.tag is tag and triage.excludes == (tag in EXCLUDING)
    assert store.current() == {key: triage}


@pytest.mark.parametrize(
    ("key", "tag", "fitting"),
    [
        pytest.param("not_recorded:c", "missing-cdr", "missing-recording", id="missing-cdr-on-not_recorded"),
        pytest.param("partial:c", "missing-cdr", "missing-recording", id="missing-cdr-on-partial"),
        pytest.param(
            "recorded_without_cdr:r", "missing-recording", "missing-cdr", id="missing-recording-on-recorded_without_cdr"
        ),
    ],
)
def test_tag_that_does_not_fit_is_refused_naming_the_fitting_tags(
    store: TriageStore, key: str, tag: str, fitting: str
) -> None:
    with pytest.raises(TriageError, match="does not fit") as raised:
        store.set(key, tag, note=NOTE, reviewer=BY)
    assert fitting in raised.value.next_step and "false-positive" in raised.value.next_step
    assert store.history() == [], "nothing is written when refused"


@pytest.mark.parametrize(
    ("tag", "note", "reviewer", "message"),
    [
        pytest.param("lost", NOTE, BY, "not a triage tag", id="unknown-tag"),
        pytest.param("test-call", "  ", BY, "note is empty", id="blank-note"),
        pytest.param("test-call", NOTE, "", "reviewer is empty", id="empty-reviewer"),
    ],
)
def test_set_refuses_bad_input(store: TriageStore, tag: str, note: str, reviewer: str, message: str) -> None:
    with pytest.raises(TriageError, match=message):
        store.set("partial:c", tag, note=note, reviewer=reviewer)
    assert store.history() == []


def test_set_then_current(store: TriageStore) -> None:
    triage = store.set("partial:c1", "test-call", note=NOTE, reviewer=BY, at=AT)
    assert triage == Triage("partial:c1", TriageTag.TEST_CALL, NOTE, BY, "2026-11-21T09:30:00.123Z")
    assert triage.excludes
    assert store.current() == {"partial:c1": triage}
    with pytest.raises(ValueError, match="timezone-aware"):
        store.set("partial:c1", "test-call", note=NOTE, reviewer=BY, at=dt.datetime(2026, 11, 21))


def test_retag_replaces_current_and_history_keeps_both(store: TriageStore) -> None:
    store.set("not_recorded:c1", TriageTag.FALSE_POSITIVE, note="looked wrong", reviewer="ann", at=AT)
    store.set("not_recorded:c2", TriageTag.TEST_CALL, note="test desk", reviewer="ann", at=AT)
    later = store.set("not_recorded:c1", TriageTag.MISSING_RECORDING, note="it was really lost", reviewer="bob")
    assert store.current() == {"not_recorded:c1": later, "not_recorded:c2": store.current()["not_recorded:c2"]}
    assert not later.excludes
    trail = store.history("not_recorded:c1")
    assert [(e.tag, e.reviewer, e.note) for e in trail] == [
        (TriageTag.FALSE_POSITIVE, "ann", "looked wrong"),
        (TriageTag.MISSING_RECORDING, "bob", "it was really lost"),
    ]
    assert [e.seq for e in store.history()] == sorted(e.seq for e in store.history())
    assert len(store.history()) == 3


def test_clear(store: TriageStore) -> None:
    store.set("partial:c1", "maintenance-window", note=NOTE, reviewer=BY)
    store.clear("partial:c1", note="the window was declared for another turret", reviewer="bob")
    assert store.current() == {}
    trail = store.history("partial:c1")
    assert [e.tag for e in trail] == [TriageTag.MAINTENANCE_WINDOW, None]
    assert trail[1].reviewer == "bob" and trail[1].at.endswith("Z")
    store.set("partial:c1", "missing-recording", note="confirmed", reviewer=BY)
    assert store.current()["partial:c1"].tag is TriageTag.MISSING_RECORDING, "a cleared key can be tagged again"


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param([], id="never-tagged"),
        pytest.param(["set", "clear"], id="already-cleared"),
    ],
)
def test_clear_of_an_untagged_key_is_refused(store: TriageStore, setup: list[str]) -> None:
    for step in setup:
        if step == "set":
            store.set("partial:c1", "test-call", note=NOTE, reviewer=BY)
        else:
            store.clear("partial:c1", note=NOTE, reviewer=BY)
    before = store.history()
    with pytest.raises(TriageError, match="no triage tag to clear") as raised:
        store.clear("partial:c1", note=NOTE, reviewer=BY)
    assert "recon triage list" in raised.value.next_step
    assert store.history() == before


def test_persists_across_reopen_and_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    with TriageStore(path) as first:
        tagged = first.set("recorded_without_cdr:r1", "missing-cdr", note=NOTE, reviewer=BY, at=AT)
        first.set("partial:c1", "test-call", note=NOTE, reviewer=BY, at=AT)
        first.clear("partial:c1", note="not a test call after all", reviewer=BY)
        trail = first.history()
    with TriageStore(path) as second:
        assert second.current() == {"recorded_without_cdr:r1": tagged}
        assert second.history() == trail
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM verification_triage_events").fetchone() == (3,)


def test_coexists_with_the_cursor_store_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / ".recon" / "runtime.db"
    cdr = Cdr("CDR-1", "ldn-a", "T1", "turret-1", "line-1", "out", 1_700_000_000_000, 60_000)
    with CursorStore(path) as cursors, TriageStore(path) as triage:
        assert cursors.save_batch("ldn-a", "primary", [cdr], "cursor-1", 1_700_000_060_000) == 1
        tagged = triage.set("not_recorded:CDR-1", "false-positive", note=NOTE, reviewer=BY)
        assert cursors.save_batch("ldn-a", "primary", [], "cursor-2", None) == 0
    with CursorStore(path) as cursors, TriageStore(path) as triage:
        assert cursors.cdrs() == [cdr]
        checkpoint = cursors.cursor("ldn-a", "primary")
        assert checkpoint is not None and checkpoint.cursor == "cursor-2"
        assert triage.current() == {"not_recorded:CDR-1": tagged}


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(ReconError, match="not a usable runtime store"):
        TriageStore(path)
