"""The search grammar and matching (pure), and `search` over an evidence store written by
EvidenceLog, including a document edited behind the chain's back."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import UsageError
from reconciler.runtime.evidence import EvidenceLog, canonical_json
from reconciler.runtime.search import parse_terms, search

GAS: dict[str, Any] = {
    "market_snapshot": {
        "timestamp_utc": "2026-08-01T09:00:00.000Z",
        "source_provider": "generic-rest",
        "commodity": 2.45,
        "currency_pair": 1.089,
        "RDSa.L": "RDSa.L",
        "instruments": {"commodity": "Natural_Gas_Hub", "currency_pair": "EUR/USD"},
    },
    "status": "attached",
}
FAILED: dict[str, Any] = {"market_snapshot": None, "status": "data_fetch_failed"}


@pytest.mark.parametrize(
    ("term", "document", "expected"),
    [
        ("market_snapshot.commodity=Natural_Gas_Hub", GAS, True),
        ("market_snapshot.commodity=natural_gas_hub", GAS, False),
        ("market_snapshot.commodity=2.45", GAS, True),
        ("market_snapshot.commodity=2.450", GAS, True),
        ("market_snapshot.commodity>2.4", GAS, True),
        ("market_snapshot.commodity>=2.45", GAS, True),
        ("market_snapshot.commodity<2.45", GAS, False),
        ("market_snapshot.commodity!=Natural_Gas_Hub", GAS, False),
        ("market_snapshot.commodity!=Brent", GAS, True),
        ("market_snapshot.currency_pair=EUR/USD", GAS, True),
        ("market_snapshot.currency_pair~eur/", GAS, True),
        ('market_snapshot."RDSa.L"=RDSa.L', GAS, True),
        ("market_snapshot.instruments.commodity=Natural_Gas_Hub", GAS, True),
        ("market_snapshot.source_provider=generic-rest", GAS, True),
        ("market_snapshot.commodity", GAS, True),
        ("market_snapshot.power", GAS, False),
        ("market_snapshot.commodity=Natural_Gas_Hub", FAILED, False),
        ("market_snapshot.commodity!=Brent", FAILED, False),
        ("status=data_fetch_failed", FAILED, True),
        ("market_snapshot", FAILED, False),
    ],
    ids=[
        "slot-matches-by-its-instrument",
        "text-is-case-sensitive",
        "slot-matches-by-its-value",
        "numbers-compare-as-numbers",
        "greater-than",
        "greater-or-equal-edge",
        "less-than-edge-excluded",
        "not-equal-excludes-the-instrument",
        "not-equal-other",
        "slash-kept-in-values",
        "contains-is-case-insensitive",
        "quoted-key-with-a-dot",
        "nested-path",
        "fixed-key",
        "presence",
        "absent-key",
        "failed-call-has-no-snapshot",
        "not-equal-needs-a-value",
        "status",
        "null-is-absent",
    ],
)
def test_term_matching(term: str, document: dict[str, Any], expected: bool) -> None:
    (parsed,) = parse_terms([term])
    assert parsed.matches(document) is expected


@pytest.mark.parametrize(
    "term",
    ["=x", "a..b=1", 'a."b=1', "price>cheap", "a.=1"],
    ids=["no-path", "empty-key", "unclosed-quote", "order-needs-a-number", "trailing-dot"],
)
def test_unreadable_terms_are_usage_errors(term: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_terms([term])
    assert term in str(raised.value)


def stamp(log: EvidenceLog, conversation: str, document: dict[str, Any], started: dt.datetime) -> None:
    text = canonical_json(document)
    log.append(
        conversation,
        f"rec-{conversation}",
        hashlib.sha256(text).hexdigest(),
        status=str(document["status"]),
        document=text,
        call_started=started,
    )


def test_search_by_period_and_terms_and_tampering(tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"
    with EvidenceLog(db) as log:
        stamp(log, "june", GAS, dt.datetime(2026, 6, 30, 23, 59, tzinfo=dt.UTC))
        stamp(log, "july", GAS, dt.datetime(2026, 7, 1, 0, 0, tzinfo=dt.UTC))
        stamp(log, "sept", GAS, dt.datetime(2026, 9, 30, 23, 59, tzinfo=dt.UTC))
        stamp(log, "failed", FAILED, dt.datetime(2026, 8, 1, tzinfo=dt.UTC))
        stamp(log, "oct", GAS, dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
        log.append("july", "rec-july", "a" * 64, "b" * 64, status="audio_archived")
        with pytest.raises(ValueError, match="digest"):
            log.append("x", "r", "c" * 64, document=b"{}")
    terms = parse_terms(["market_snapshot.commodity=Natural_Gas_Hub"])
    found = search(db, terms, dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert [hit.conversation_id for hit in found.hits] == ["july", "sept"], "period edges are inclusive UTC days"
    assert found.scanned == 3 and found.tampered == 0
    assert found.hits[0].audio_sha256 == "b" * 64 and found.hits[1].audio_sha256 is None
    assert [h.conversation_id for h in search(db, terms).hits] == ["june", "july", "sept", "oct"]
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE documents SET document = replace(document, '2.45', '2.55') WHERE conversation_id = 'sept'")
    again = search(db, parse_terms(["status=nothing-matches-this"]), dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert [(h.conversation_id, h.integrity) for h in again.hits] == [("sept", "tampered")]
    assert again.tampered == 1 and again.hits[0].document is None, "a tampered document is flagged, never shown"


def test_search_without_a_store_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no evidence store"):
        search(tmp_path / "absent.db", parse_terms(["status"]))
