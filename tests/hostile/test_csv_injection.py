"""Issue 17, class 11: CSV from every command is safe to open in a spreadsheet.

`recon search --format csv` wrote `=cmd|' /C calc'!A0` as it came; `recon verify` guarded
= + - @ tab CR but not the fullwidth forms, a formula after leading blanks, or a cell that a
`;`-separated spreadsheet splits into a formula. One writer (reconciler.csvsafe) now serves
both: the cell table here, the two renderers, and the search end to end through the CLI.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
from pathlib import Path

import pytest
from conftest import Recon
from hypothesis import given
from hypothesis import strategies as st

from reconciler import csvsafe
from reconciler.runtime.evidence import EvidenceLog, canonical_json
from reconciler.runtime.verification.report import Figures, ReportFinding, SourceStatus, VerificationReport
from reconciler.runtime.verification.report_render import render_csv

CALC = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        pytest.param(CALC, "'" + CALC, id="dde-equals"),
        pytest.param("+1+2", "'+1+2", id="plus-formula"),
        pytest.param("-2+3", "'-2+3", id="minus-formula-is-not-a-number"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\t=1", "'\t=1", id="leading-tab"),
        pytest.param("\r=1", "'\r=1", id="leading-cr"),
        pytest.param("\n=1", "'\n=1", id="leading-lf"),
        pytest.param("\0x", "'\0x", id="leading-nul"),
        pytest.param("  =1+1", "'  =1+1", id="formula-after-blanks"),
        pytest.param("\u00a0=1+1", "'\u00a0=1+1", id="formula-after-no-break-space"),
        pytest.param("＝cmd|' /C calc'!A0", "'＝cmd|' /C calc'!A0", id="fullwidth-equals"),
        pytest.param("＋1", "'＋1", id="fullwidth-plus"),
        pytest.param("－1+1", "'－1+1", id="fullwidth-minus"),
        pytest.param("＠SUM(A1)", "'＠SUM(A1)", id="fullwidth-at"),
        pytest.param("﹦1", "'﹦1", id="small-equals"),
        pytest.param("-5", "-5", id="negative-number-text-kept"),
        pytest.param("+1.5", "+1.5", id="signed-number-text-kept"),
        pytest.param("2.4e-3", "2.4e-3", id="exponent-kept"),
        pytest.param(-3, "-3", id="negative-int-kept"),
        pytest.param(-0.25, "-0.25", id="negative-float-kept"),
        pytest.param(decimal.Decimal("-1.10"), "-1.10", id="decimal-kept"),
        pytest.param(float("-inf"), "'-inf", id="infinite-float-is-text"),
        pytest.param(True, "true", id="bool"),
        pytest.param(None, "", id="none-empty"),
        pytest.param({"k": "=1"}, '{"k":"=1"}', id="mapping-as-json"),
        pytest.param("EUR/USD", "EUR/USD", id="plain-untouched"),
        pytest.param("a-b=c", "a-b=c", id="operator-inside-untouched"),
    ],
)
def test_cell_text(value: object, written: str) -> None:
    assert csvsafe.cell_text(value) == written


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param("x;=cmd|' /C calc'!A0", "\"x;=cmd|' /C calc'!A0\"", id="semicolon-split-quoted"),
        pytest.param("a|=1", '"a|=1"', id="pipe-quoted"),
        pytest.param('say "hi"', '"say ""hi"""', id="quotes-doubled"),
        pytest.param("two\nlines", '"two\nlines"', id="line-break-quoted"),
        pytest.param(" padded", '" padded"', id="leading-blank-quoted"),
        pytest.param("plain", "plain", id="plain-bare"),
        pytest.param(2.45, "2.45", id="number-bare"),
    ],
)
def test_field_quoting(value: object, field: str) -> None:
    assert csvsafe.field(value) == field


@given(st.lists(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.none()), max_size=8))
def test_no_cell_read_back_starts_a_formula(values: list[object]) -> None:
    """Whatever the values, every cell read back is a number or does not start a formula."""
    (row,) = csv.reader(io.StringIO(csvsafe.line(values)))
    assert len(row) == len(values)
    for cell in row:
        assert not csvsafe.needs_guard(cell), cell


def one_finding_report(detail: str, cdr_id: str) -> VerificationReport:
    finding = ReportFinding(
        key=f"not_recorded:{cdr_id}",
        verdict="not_recorded",
        severity="critical",
        trader_id="-T1",
        desks=("rates",),
        collector="col-a",
        cdr_id=cdr_id,
        recording_id=None,
        conversation_id=None,
        start="2026-11-21T09:00:00.000Z",
        duration_ms=-1,
        detail=detail,
        triage=None,
    )
    everything = Figures("all", {"not_recorded": 1}, 0.0, 0.999)
    return VerificationReport(
        topology="prod-voice",
        switch="tradesense-ldn",
        period_from="2026-11-21",
        period_to="2026-11-21",
        generated_at="2026-11-22T00:05:00.000Z",
        target=0.999,
        tolerances={"start_ms": 2_000},
        total=everything,
        desks=(everything,),
        traders=(everything,),
        collectors=(everything,),
        findings=(finding,),
        sources=(SourceStatus("col-a", ok=True, cdrs=1, detail="ok"),),
        skew_ms={},
        warnings=(),
    )


def test_verify_report_csv_uses_the_guard() -> None:
    text = render_csv(one_finding_report("＝HYPERLINK(1)", "x;=1+1"))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["detail"] == "'＝HYPERLINK(1)"
    assert row["cdr_id"] == "x;=1+1" and '"x;=1+1"' in text
    assert row["trader_id"] == "'-T1" and row["duration_ms"] == "-1"
    assert text.startswith("key,severity,verdict,")


def stamp(log: EvidenceLog, conversation: str, snapshot: dict[str, object]) -> None:
    document = canonical_json({"market_snapshot": snapshot, "status": "attached"})
    log.append(
        conversation,
        f"rec-{conversation}",
        hashlib.sha256(document).hexdigest(),
        document=document,
        call_started=dt.datetime(2026, 8, 1, 9, tzinfo=dt.UTC),
    )


def test_search_csv_through_the_cli_guards_every_cell(recon: Recon, tmp_path: Path) -> None:
    with EvidenceLog(tmp_path / ".recon" / "runtime.db") as log:
        stamp(
            log,
            CALC,
            {
                "timestamp_utc": "2026-08-01T09:00:00.000Z",
                "source_provider": "@evil",
                "commodity": -2.5,
                "note": "+1+cmd|' /C calc'!A0",
                "instruments": {"commodity": "＝HYPERLINK(1)"},
            },
        )
    result = recon("search", "market_snapshot.commodity<0", "--format", "csv")
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["conversation_id"] == "'" + CALC
    assert row["recording_id"] == "rec-" + CALC  # does not start a formula: kept
    assert row["source_provider"] == "'@evil"
    assert row["note"] == "'+1+cmd|' /C calc'!A0"
    assert row["commodity.instrument"] == "'＝HYPERLINK(1)"
    assert row["commodity"] == "-2.5", "a negative price stays a number"
    for cell in row.values():
        assert not csvsafe.needs_guard(cell), cell
