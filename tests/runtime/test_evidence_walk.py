"""The pure walk's boundaries, so a mutant that shifts one cannot survive: the first and the
last record, a head exactly at the end (and one short of it, one past it), the empty log,
the format-2 boundary and the seal's seq, every branch of the document check, and the
head-body parser."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.errors import ReconError
from reconciler.runtime.evidence_chain import (
    FORMAT_2,
    GENESIS,
    SEALED,
    ChainHead,
    EvidenceRecord,
    LogRules,
    canonical_json,
    genesis,
)
from reconciler.runtime.evidence_heads import head_key, parse_head
from reconciler.runtime.evidence_store import build_record
from reconciler.runtime.evidence_walk import StoredDocument, claim, document_problem, walk

LOG = "ab" * 16
RULES = LogRules(log_id=LOG)
STARTED = "2026-08-01T09:00:00.000000Z"


def doc_digest(seq: int) -> str:
    return hashlib.sha256(canonical_json({"n": seq})).hexdigest()


def chain(count: int, *, documents: bool = True, rules: LogRules = RULES) -> list[EvidenceRecord]:
    rows, prev = [], rules.first_prev
    for seq in range(1, count + 1):
        digest = doc_digest(seq)
        row = build_record(
            seq,
            prev,
            f"c{seq}",
            f"r{seq}",
            digest,
            None,
            "attached",
            f"t{seq}",
            digest if documents else None,
            STARTED if documents else None,
        )
        if rules.is_legacy(seq):
            row = dataclasses.replace(row, hash=row.computed_hash(legacy=True))
        rows.append(row)
        prev = row.hash
    return rows


def docs(rows: list[EvidenceRecord]) -> dict[int, StoredDocument]:
    return {r.seq: StoredDocument(r.snapshot_sha256, r.conversation_id, STARTED) for r in rows if r.claims_document}


def head(row: EvidenceRecord, log: str | None = LOG) -> ChainHead:
    return ChainHead(row.seq, row.hash, row.recorded_at, row.seq, log)


def found(rows: list[EvidenceRecord], heads: list[ChainHead] | None = None, **kwargs: Any) -> tuple[int, str] | None:
    documents = kwargs.pop("documents", docs(rows))
    report = walk(rows, heads, rules=kwargs.pop("rules", RULES), documents=documents)
    return None if report.broken is None else (report.broken.seq, report.broken.kind)


def test_the_empty_log() -> None:
    report = walk([], [], rules=RULES)
    assert (report.intact, report.records, report.head_seq, report.head_hash) == (True, 0, 0, genesis(LOG))
    assert (report.heads_checked, report.unanchored, report.documents) == (0, 0, 0)


def test_the_empty_log_with_a_published_head_was_emptied() -> None:
    rows = chain(3)
    report = walk([], [head(rows[2])], rules=RULES)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (1, "head-mismatch")
    assert "records 1..3 were deleted" in report.broken.detail and report.heads_checked == 1


@pytest.mark.parametrize(
    ("heads", "checked", "unanchored"),
    [
        pytest.param(lambda rows: [head(rows[-1])], 1, 0, id="head-exactly-at-the-end"),
        pytest.param(lambda rows: [head(rows[-2])], 1, 1, id="head-one-short-of-the-end"),
        pytest.param(lambda rows: [head(rows[0]), head(rows[-1])], 2, 0, id="first-and-last"),
        pytest.param(lambda rows: [head(rows[0])], 1, 4, id="head-at-the-first-record"),
        pytest.param(lambda rows: [], 0, 5, id="heads-asked-none-published"),
        pytest.param(lambda rows: [head(rows[-1]), head(rows[-1])], 2, 0, id="the-same-head-twice"),
    ],
)
def test_heads_that_match(
    heads: Callable[[list[EvidenceRecord]], list[ChainHead]], checked: int, unanchored: int
) -> None:
    rows = chain(5)
    report = walk(rows, heads(rows), rules=RULES, documents=docs(rows))
    assert report.intact, report.broken
    assert (report.heads_checked, report.unanchored) == (checked, unanchored)


def test_no_heads_asked_means_nothing_unanchored() -> None:
    rows = chain(5)
    assert walk(rows, None, rules=RULES, documents=docs(rows)).unanchored == 0


@pytest.mark.parametrize(
    ("heads", "expected", "detail"),
    [
        pytest.param(
            lambda rows: [ChainHead(6, "e" * 64, "t", 6, LOG)],
            (6, "head-mismatch"),
            "records 6..6",
            id="one-past-the-end",
        ),
        pytest.param(
            lambda rows: [ChainHead(9, "e" * 64, "t", 9, LOG)],
            (6, "head-mismatch"),
            "records 6..9",
            id="far-past-the-end",
        ),
        pytest.param(
            lambda rows: [dataclasses.replace(head(rows[4]), hash="e" * 64)],
            (5, "head-mismatch"),
            "seq 5",
            id="last-differs",
        ),
        pytest.param(
            lambda rows: [dataclasses.replace(head(rows[0]), hash="e" * 64)],
            (1, "head-mismatch"),
            "seq 1",
            id="first-differs",
        ),
    ],
)
def test_heads_that_do_not_match(
    heads: Callable[[list[EvidenceRecord]], list[ChainHead]], expected: tuple[int, str], detail: str
) -> None:
    rows = chain(5)
    report = walk(rows, heads(rows), rules=RULES, documents=docs(rows))
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == expected
    assert detail in report.broken.detail


def test_a_head_without_a_log_is_another_logs_for_a_log_with_an_id() -> None:
    rows = chain(3)
    report = walk(rows, [head(rows[2], log=None)], rules=RULES, documents=docs(rows))
    assert (report.intact, report.heads_checked, report.foreign_heads) == (True, 0, 1)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(lambda rows: rows[1:], (1, "deleted"), id="first-record-gone"),
        pytest.param(lambda rows: rows[:-1], None, id="last-record-gone-no-head-sees-nothing"),
        pytest.param(
            lambda rows: [dataclasses.replace(rows[0], status="x"), *rows[1:]], (1, "edited"), id="first-edited"
        ),
        pytest.param(
            lambda rows: [*rows[:-1], dataclasses.replace(rows[-1], status="x")], (5, "edited"), id="last-edited"
        ),
        pytest.param(lambda rows: [dataclasses.replace(rows[0], seq=0), *rows], (0, "edited"), id="a-row-at-seq-0"),
        pytest.param(lambda rows: [*rows[:3], rows[2], *rows[3:]], (3, "duplicated"), id="seq-three-twice"),
        pytest.param(lambda rows: [rows[0], *rows], (1, "duplicated"), id="seq-one-twice"),
        pytest.param(
            lambda rows: [*rows, dataclasses.replace(rows[-1], seq=6)], (6, "duplicated"), id="last-copied-after-itself"
        ),
        pytest.param(lambda rows: rows[:1] + rows[3:], (2, "deleted"), id="two-missing"),
    ],
)
def test_first_and_last_records(
    tamper: Callable[[list[EvidenceRecord]], list[EvidenceRecord]], expected: tuple[int, str] | None
) -> None:
    rows = chain(5, documents=False)
    assert found(tamper(rows)) == expected


@pytest.mark.parametrize(
    ("gap", "detail"),
    [(rows_gap, text) for rows_gap, text in ((1, "record 3 missing"), (2, "records 3..4 missing"))],
    ids=["one-missing", "two-missing"],
)
def test_the_gap_is_named(gap: int, detail: str) -> None:
    rows = chain(6, documents=False)
    report = walk(rows[:2] + rows[2 + gap :], rules=RULES)
    assert report.broken is not None and detail in report.broken.detail


def rehashed(row: EvidenceRecord, rules: LogRules = RULES, **changes: Any) -> EvidenceRecord:
    changed = dataclasses.replace(row, **changes)
    return dataclasses.replace(changed, hash=rules.hash_of(changed))


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(
            lambda r: [rehashed(r[0], prev_hash=GENESIS), *r[1:]], (1, "edited"), id="record-1-from-another-genesis"
        ),
        pytest.param(
            lambda r: [rehashed(r[0], prev_hash=r[2].hash), *r[1:]], (1, "reordered"), id="record-1-linked-to-record-3"
        ),
        pytest.param(
            lambda r: [*r[:3], rehashed(r[3], prev_hash=r[1].hash), r[4]], (3, "reordered"), id="record-4-linked-to-2"
        ),
        pytest.param(lambda r: [r[0], rehashed(r[1], status="x"), *r[2:]], (2, "edited"), id="rewritten-with-its-hash"),
    ],
)
def test_links(tamper: Callable[[list[EvidenceRecord]], list[EvidenceRecord]], expected: tuple[int, str]) -> None:
    assert found(tamper(chain(5, documents=False))) == expected


def test_the_walk_goes_on_past_a_document_and_stops_at_the_chain() -> None:
    rows = chain(5)
    documents = docs(rows)
    del documents[2]
    report = walk(rows, rules=RULES, documents=documents)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (2, "document-missing")
    assert (report.verified_through, report.documents) == (5, 4), "records after a lost document are still checked"
    edited = [*rows[:3], dataclasses.replace(rows[3], status="x"), rows[4]]
    report = walk(edited, rules=RULES, documents=documents)
    assert report.broken is not None and report.broken.seq == 2 and report.verified_through == 3
    stopped = walk(rows, [dataclasses.replace(head(rows[2]), hash="e" * 64)], rules=RULES, documents=docs(rows))
    assert stopped.verified_through == 2, "a head that does not match stops the walk before its record"


def test_a_document_break_and_a_chain_break_at_one_seq_name_the_chain() -> None:
    rows = chain(4)
    documents = docs(rows)
    documents[9] = StoredDocument("a" * 64, "c9", STARTED)  # unbound, but later
    assert found([*rows[:2], rows[3]], documents=documents) == (3, "deleted")
    assert found(rows, documents=documents) == (9, "document-unbound")
    documents[3] = StoredDocument("a" * 64, "c3", STARTED)
    assert found(rows, documents=documents) == (3, "document-altered")


def row(**changes: Any) -> EvidenceRecord:
    digest = doc_digest(4)
    base = build_record(4, GENESIS, "c4", "r4", digest, None, "attached", "t", digest, STARTED)
    return dataclasses.replace(base, **changes)


STORED = StoredDocument(doc_digest(4), "c4", STARTED)
SEALED_RULES = LogRules(log_id=LOG, legacy_end=4, sealed={4: STARTED})


@pytest.mark.parametrize(
    ("record", "rules", "stored", "problem"),
    [
        pytest.param(row(), RULES, STORED, None, id="bound-and-present"),
        pytest.param(row(), RULES, None, "document-missing", id="bound-and-gone"),
        pytest.param(row(), RULES, dataclasses.replace(STORED, digest="e" * 64), "document-altered", id="other-text"),
        pytest.param(row(), RULES, dataclasses.replace(STORED, copies=2), "document-altered", id="stored-twice"),
        pytest.param(row(), RULES, dataclasses.replace(STORED, call_started="x"), "document-altered", id="other-start"),
        pytest.param(
            row(), RULES, dataclasses.replace(STORED, conversation_id="x"), "document-altered", id="other-call"
        ),
        pytest.param(row(document_sha256=None, call_started=None), RULES, None, None, id="keeps-none"),
        pytest.param(
            row(document_sha256=None, call_started=None), RULES, STORED, "document-unbound", id="keeps-none-has-one"
        ),
        pytest.param(row(document_sha256=None, call_started=None), FORMAT_2, STORED, None, id="format-2-stored"),
        pytest.param(row(document_sha256=None, call_started=None), FORMAT_2, None, None, id="format-2-lost-unseen"),
        pytest.param(
            row(document_sha256=None, call_started=None),
            FORMAT_2,
            dataclasses.replace(STORED, digest="e" * 64),
            "document-altered",
            id="format-2-other-text",
        ),
        pytest.param(row(), SEALED_RULES, STORED, None, id="sealed-and-present"),
        pytest.param(row(), SEALED_RULES, None, "document-missing", id="sealed-and-gone"),
        pytest.param(row(call_started="x"), SEALED_RULES, STORED, "edited", id="sealed-columns-changed"),
        pytest.param(
            row(document_sha256=None, call_started=None),
            LogRules(log_id=LOG, legacy_end=4, sealed={}),
            STORED,
            "document-unbound",
            id="not-in-the-seal",
        ),
        pytest.param(
            row(), LogRules(log_id=LOG, legacy_end=3, sealed={}), STORED, None, id="just-after-the-legacy-end"
        ),
    ],
)
def test_document_problem(
    record: EvidenceRecord, rules: LogRules, stored: StoredDocument | None, problem: str | None
) -> None:
    got = document_problem(record, rules, stored)
    assert got is None if problem is None else (got is not None and got[0] == problem)
    if problem is None and stored is not None:
        assert claim(record, rules, stored) is not None or rules is FORMAT_2


@pytest.mark.parametrize(
    ("rules", "first_prev", "legacy", "bound"),
    [
        pytest.param(RULES, genesis(LOG), (False, False), True, id="format-3"),
        pytest.param(LogRules(log_id=LOG, legacy_end=2, sealed={}), GENESIS, (True, False), True, id="upgraded"),
        pytest.param(FORMAT_2, GENESIS, (True, True), False, id="format-2"),
        pytest.param(LogRules(log_id=None), GENESIS, (False, False), True, id="no-id"),
    ],
)
def test_rules(rules: LogRules, first_prev: str, legacy: tuple[bool, bool], bound: bool) -> None:
    assert rules.first_prev == first_prev
    assert (rules.is_legacy(2), rules.is_legacy(3)) == legacy
    assert rules.documents_bound is bound


def test_an_upgraded_log_checks_format_2_records_with_their_own_hash_and_the_seal_at_its_seq() -> None:
    rules = LogRules(log_id=LOG, legacy_end=2, sealed={1: STARTED, 2: STARTED})
    rows = chain(2, rules=rules)
    seal = build_record(3, rows[-1].hash, "", "", "s" * 64, None, SEALED, "t", "s" * 64, STARTED)
    after = build_record(4, seal.hash, "c4", "r4", doc_digest(4), None, "attached", "t4", None, None)
    documents = {**docs(rows), 3: StoredDocument("s" * 64, "", STARTED)}
    assert found([*rows, seal, after], rules=rules, documents=documents) is None
    not_sealed = dataclasses.replace(seal, status="attached")
    assert found([*rows, rehashed(not_sealed, rules), after], rules=rules, documents=documents) == (3, "edited")
    stray = build_record(5, after.hash, "", "", "s" * 64, None, SEALED, "t", None, None)
    assert found([*rows, seal, after, stray], rules=rules, documents=documents) == (5, "edited")
    broken = dataclasses.replace(rules, seal_problem="record 3 seals another log")
    assert found([*rows, seal, after], rules=broken, documents=documents) == (3, "edited")


@pytest.mark.parametrize(
    ("rules", "detail"),
    [
        pytest.param(
            LogRules(log_id="", problem="the log's identity was removed"), "identity was removed", id="problem"
        ),
        pytest.param(LogRules(log_id="XYZ"), "32 hex characters", id="not-an-id"),
    ],
)
def test_a_damaged_identity_is_a_break_at_seq_1(rules: LogRules, detail: str) -> None:
    report = walk(chain(2), rules=rules)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (1, "edited")
    assert detail in report.broken.detail


# -- head bodies -------------------------------------------------------------------------------


def body(**changes: Any) -> bytes:
    return canonical_json({"seq": 1, "hash": "a" * 64, "recorded_at": "t", "records": 1, "log": LOG} | changes)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(body(), None, id="a-head"),
        pytest.param(
            canonical_json({"seq": 1, "hash": "a" * 64, "recorded_at": "t", "records": 0}), None, id="format-2-head"
        ),
        pytest.param(body(seq=0), "seq must be", id="seq-0"),
        pytest.param(body(seq=True), "seq must be", id="seq-bool"),
        pytest.param(body(seq="1"), "seq must be", id="seq-text"),
        pytest.param(body(hash="A" * 64), "hash must be", id="hash-upper"),
        pytest.param(body(hash="a" * 63), "hash must be", id="hash-short"),
        pytest.param(body(records=-1), "records a whole number", id="records-negative"),
        pytest.param(body(recorded_at=5), "recorded_at must be text", id="time-not-text"),
        pytest.param(body(log="ab" * 17), "log must be", id="log-too-long"),
        pytest.param(b"[1]", "not a JSON object", id="not-an-object"),
        pytest.param(b"{" * 5000, "is not an evidence chain head", id="too-large"),
    ],
)
def test_parse_head(text: bytes, error: str | None) -> None:
    if error is None:
        assert parse_head(text, "h.json").seq == 1
    else:
        with pytest.raises(ReconError, match=error):
            parse_head(text, "h.json")


def test_head_key_names_the_log() -> None:
    assert head_key("evidence/heads/", LOG, 7) == f"evidence/heads/{LOG}/000000000007.json"
