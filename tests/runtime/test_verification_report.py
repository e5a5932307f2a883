"""The capture-verification report and its renderers, table-driven on hand-built reports: the exit
code, the target edge, JSON shape, and each renderer's figures and escaping (HTML, Markdown `|`,
CSV formulas, terminal control characters)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping

import pytest

from reconciler.runtime.verification.report import (
    SCHEMA,
    TRIAGED,
    Figures,
    ReportFinding,
    SourceStatus,
    TriageInfo,
    VerificationReport,
    sort_findings,
)
from reconciler.runtime.verification.report_render import (
    CSV_HEADER,
    RENDERERS,
    TRIAGE_HINT,
    gauge_bar,
    percent,
    render_csv,
    render_html,
    render_json,
    render_markdown,
    render_text,
)

TARGET = 0.999
GOOD = {"verified": 999, "partial": 1}  # 99.90%: exactly at target
BAD = {"verified": 990, "not_recorded": 10}  # 99.00%
FALSE_POSITIVE = TriageInfo("false-positive", "test call", "alice", "2026-11-22T08:00:00.000Z", excludes=True)
OK_SOURCE = SourceStatus("col-a", ok=True, cdrs=1000, detail="polled up to date")
DOWN_SOURCE = SourceStatus("col-b", ok=False, cdrs=0, detail="collector_down: timeout (stored CDRs used)")


def figures(name: str = "all", counts: Mapping[str, int] | None = None, target: float = TARGET) -> Figures:
    counts = dict(GOOD if counts is None else counts)
    counted = sum(counts.get(key, 0) for key in ("verified", "partial", "not_recorded"))
    return Figures(name, counts, counts.get("verified", 0) / counted if counted else None, target)


def finding(
    verdict: str = "not_recorded",
    severity: str = "critical",
    *,
    cdr_id: str = "c1",
    detail: str = "no recording after grace",
    trader: str = "T1",
    triage: TriageInfo | None = None,
) -> ReportFinding:
    return ReportFinding(
        key=f"{verdict}:{cdr_id}",
        verdict=verdict,
        severity=severity,
        trader_id=trader,
        desks=("rates",),
        collector="col-a",
        cdr_id=cdr_id,
        recording_id=None,
        conversation_id=None,
        start="2026-11-21T09:00:00.000Z",
        duration_ms=60_000,
        detail=detail,
        triage=triage,
    )


def report(
    *,
    total: Figures | None = None,
    desks: tuple[Figures, ...] | None = None,
    findings: tuple[ReportFinding, ...] = (),
    sources: tuple[SourceStatus, ...] = (OK_SOURCE,),
    skew_ms: Mapping[str, int] | None = None,
    warnings: tuple[str, ...] = (),
) -> VerificationReport:
    return VerificationReport(
        topology="prod-voice",
        switch="tradesense-ldn",
        period_from="2026-11-21",
        period_to="2026-11-21",
        generated_at="2026-11-22T00:05:00.000Z",
        target=TARGET,
        tolerances={"start_ms": 2_000, "duration_ms": 1_000, "grace_ms": 300_000},
        total=total or figures(),
        desks=(figures("rates"), figures("fx")) if desks is None else desks,
        traders=(figures("T1"),),
        collectors=(figures("col-a"),),
        findings=sort_findings(findings),
        sources=sources,
        skew_ms={"col-a": 0} if skew_ms is None else skew_ms,
        warnings=warnings,
    )


# --- exit code -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, 0, id="all-good-is-0"),
        pytest.param({"findings": (finding(),)}, 3, id="untriaged-critical-is-3"),
        pytest.param(
            {"findings": (finding(triage=FALSE_POSITIVE),)}, 0, id="critical-triaged-false-positive-not-counted"
        ),
        pytest.param({"total": figures(counts=BAD)}, 3, id="total-below-target-is-3"),
        pytest.param({"desks": (figures("rates"), figures("fx", BAD))}, 3, id="one-desk-below-target-is-3"),
        pytest.param({"findings": (finding("recorded_without_cdr", "minor"),)}, 2, id="only-minor-is-2"),
        pytest.param({"findings": (finding("partial", "major"),)}, 2, id="untriaged-major-is-2"),
        pytest.param({"sources": (OK_SOURCE, DOWN_SOURCE)}, 2, id="source-not-ok-is-2"),
        pytest.param({"findings": (finding("pending", "info"),)}, 0, id="pending-only-is-0"),
        pytest.param({"findings": (finding("exempt", "ok"),)}, 0, id="exempt-only-is-0"),
        pytest.param({"total": figures(counts={}), "desks": (figures("idle", {}),)}, 0, id="nothing-counted-is-0"),
        pytest.param(
            {"findings": (finding(), finding("partial", "major", cdr_id="c2")), "sources": (DOWN_SOURCE,)},
            3,
            id="critical-outranks-review",
        ),
    ],
)
def test_exit_code(kwargs: dict[str, object], expected: int) -> None:
    assert report(**kwargs).exit_code() == expected  # type: ignore[arg-type]


def test_untriaged_leaves_out_triaged_pending_and_exempt() -> None:
    critical, major = finding(), finding("partial", "major", cdr_id="c2")
    quiet = (finding("pending", "info", cdr_id="c3"), finding("exempt", "ok", cdr_id="c4"))
    triaged = finding(cdr_id="c5", triage=FALSE_POSITIVE)
    assert report(findings=(major, critical, triaged, *quiet)).untriaged == (critical, major)


def test_sort_findings_by_severity_then_start_then_key() -> None:
    late = dataclasses.replace(finding(cdr_id="c9"), start="2026-11-21T10:00:00.000Z")
    ordered = sort_findings([finding("pending", "info"), finding("partial", "major"), late, finding(cdr_id="c2")])
    assert [f.key for f in ordered] == ["not_recorded:c2", "not_recorded:c9", "partial:c1", "pending:c1"]


# --- figures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compliance", "target", "expected"),
    [
        pytest.param(0.999, 0.999, True, id="exactly-at-target-meets"),
        pytest.param(999 / 1000, 0.999, True, id="ratio-equal-to-target-meets"),
        pytest.param(0.9989999, 0.999, False, id="just-below-target-misses"),
        pytest.param(1.0, 0.999, True, id="above-target-meets"),
        pytest.param(None, 0.999, None, id="nothing-counted-is-none"),
        pytest.param(0.0, 0.0, True, id="zero-target-zero-compliance-meets"),
    ],
)
def test_meets_target_edges(compliance: float | None, target: float, expected: bool | None) -> None:
    assert Figures("rates", {}, compliance, target).meets_target is expected


def test_calls_counts_verified_partial_not_recorded_exempt_triaged() -> None:
    counts = {"verified": 5, "partial": 4, "not_recorded": 3, "exempt": 2, TRIAGED: 1, "pending": 100}
    assert Figures("all", counts | {"recorded_without_cdr": 50}, None, TARGET).calls == 15
    assert Figures("all", {}, None, TARGET).calls == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.999, "99.90%", id="two-decimals"),
        pytest.param(1.0, "100.00%", id="full"),
        pytest.param(0.99999, "99.99%", id="below-one-never-shows-100"),
        pytest.param(None, "n/a", id="none"),
    ],
)
def test_percent(value: float | None, expected: str) -> None:
    assert percent(value) == expected


@pytest.mark.parametrize(
    ("value", "filled"),
    [pytest.param(0.9, 18, id="ninety-percent"), pytest.param(1.0, 20, id="full"), pytest.param(0.0, 0, id="empty")],
)
def test_gauge_bar(value: float, filled: int) -> None:
    assert gauge_bar(value) == "█" * filled + "░" * (20 - filled)


# --- renderers ---------------------------------------------------------------------------------


def test_renderers_table_has_every_format() -> None:
    assert set(RENDERERS) == {"text", "json", "csv", "markdown", "html"}


@pytest.mark.parametrize("name", ["text", "markdown", "html"])
def test_human_renderers_show_figures_desks_and_status(name: str) -> None:
    bad_desk = figures("fx", {"verified": 9, "not_recorded": 1})  # 90.00%
    out = RENDERERS[name](report(desks=(figures("rates"), bad_desk), findings=(finding(),)))
    for expected in ("prod-voice", "tradesense-ldn", "2026-11-21", "99.90%", "90.00%", "rates", "fx", "c1"):
        assert expected in out
    assert TRIAGE_HINT in out


def test_text_marks_pass_below_and_incomplete_source() -> None:
    below = figures("fx", BAD)
    text = render_text(report(desks=(figures("rates"), below), sources=(OK_SOURCE, DOWN_SOURCE)))
    desk_lines = {line.split()[0]: line for line in text.splitlines() if line.startswith(("rates", "fx"))}
    assert "PASS" in desk_lines["rates"]
    assert "BELOW" in desk_lines["fx"]
    assert "99.00%" in desk_lines["fx"]
    assert "INCOMPLETE" in text
    assert "col-b" in text


def test_text_lists_untriaged_first_and_shows_skew_and_warnings() -> None:
    triaged = finding(cdr_id="c0", triage=FALSE_POSITIVE)  # sorts first in the report
    minor = finding("recorded_without_cdr", "minor", cdr_id="c9")
    text = render_text(report(findings=(triaged, minor), skew_ms={"col-a": -250}, warnings=("check NTP",)))
    assert text.index("recorded_without_cdr") < text.index("false-positive")
    assert "-250 ms" in text
    assert "check NTP" in text


def test_text_escapes_control_characters() -> None:
    text = render_text(report(findings=(finding(detail="red \x1b[31malert\x1b[0m"),)))
    assert "\x1b" not in text
    assert "\\x1b[31malert" in text


def test_html_escapes_outside_values() -> None:
    page = render_html(report(findings=(finding(detail="<script>alert('x')</script>"),)))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "Capture verification — prod-voice — 2026-11-21 to 2026-11-21" in page


def test_html_gauge_colours_and_target_marker() -> None:
    page = render_html(report(desks=(figures("rates"), figures("fx", BAD))))
    assert page.count("<svg") == 3  # two desks and the total
    assert 'fill="#2e7d32"' in page  # rates meets
    assert 'fill="#c62828"' in page  # fx below
    assert 'x1="199.8"' in page  # target marker at 99.9% of 200
    assert "http" not in page.lower().replace('lang="en"', "")  # no external assets
    assert "<script" not in page


def test_markdown_gauge_table_and_pipe_escaping() -> None:
    md = render_markdown(report(desks=(figures("rates"), figures("fx", BAD)), findings=(finding(detail="a|b"),)))
    assert "| Desk | Compliance | Target | Gauge | Status |" in md
    assert "| rates | 99.90% | 99.90% | `████████████████████` | ✅ meets |" in md
    assert "| fx | 99.00% | 99.90% | `████████████████████` | ❌ below |" in md
    assert "a\\|b" in md
    assert "a|b" not in md


def test_markdown_does_not_pass_html_through() -> None:
    md = render_markdown(report(findings=(finding(detail="<img src=x onerror=alert(1)>"),)))
    assert "<img" not in md
    assert "&lt;img" in md


def test_markdown_empty_desk_is_not_applicable() -> None:
    md = render_markdown(report(desks=(figures("idle", {}),)))
    assert "| idle | n/a | 99.90% | `n/a` | – n/a |" in md


@pytest.mark.parametrize(
    ("detail", "cell"),
    [
        pytest.param('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")', id="equals"),
        pytest.param("+1+2", "'+1+2", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("plain, with comma", "plain, with comma", id="plain-untouched"),
    ],
)
def test_csv_guards_formula_injection(detail: str, cell: str) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(report(findings=(finding(detail=detail),))))))
    assert rows[0] == CSV_HEADER.split(",")
    assert rows[1][rows[0].index("detail")] == cell


def test_csv_one_row_per_finding_with_triage() -> None:
    multi_desk = dataclasses.replace(finding(cdr_id="c2", triage=FALSE_POSITIVE), desks=("fx", "rates"))
    rows = list(csv.DictReader(io.StringIO(render_csv(report(findings=(finding(), multi_desk))))))
    assert [row["key"] for row in rows] == ["not_recorded:c1", "not_recorded:c2"]
    assert rows[0]["triage_tag"] == ""
    assert rows[1]["desks"] == "fx;rates"
    assert (rows[1]["triage_tag"], rows[1]["triage_reviewer"]) == ("false-positive", "alice")
    assert rows[1]["duration_ms"] == "60000"


def test_json_round_trips_with_schema_and_camel_case() -> None:
    original = report(
        desks=(figures("rates"), figures("idle", {})),
        findings=(finding(), finding("partial", "major", cdr_id="c2", triage=FALSE_POSITIVE)),
        sources=(OK_SOURCE, DOWN_SOURCE),
        skew_ms={"col-a": 120},
    )
    data = json.loads(render_json(original))
    assert data == original.to_json()
    assert data["schema"] == SCHEMA == "recon.verification-report/v1"
    assert data["period"] == {"from": "2026-11-21", "to": "2026-11-21"}
    assert data["tolerances"] == {"startMs": 2_000, "durationMs": 1_000, "graceMs": 300_000}
    assert data["total"]["meetsTarget"] is True
    assert data["total"]["calls"] == 1000
    assert data["total"]["counts"]["not_recorded"] == 0  # missing keys filled in
    assert data["desks"][1] == {
        "name": "idle",
        "counts": dict.fromkeys(data["desks"][1]["counts"], 0),
        "compliance": None,
        "target": TARGET,
        "meetsTarget": None,
        "calls": 0,
    }
    first, second = data["findings"]
    assert first["triage"] is None
    assert first["traderId"] == "T1"
    assert first["durationMs"] == 60_000
    assert second["triage"] == {
        "tag": "false-positive",
        "note": "test call",
        "reviewer": "alice",
        "at": "2026-11-22T08:00:00.000Z",
        "excludes": True,
    }
    assert data["sources"][1] == {"collector": "col-b", "ok": False, "cdrs": 0, "detail": DOWN_SOURCE.detail}
    assert data["skewMs"] == {"col-a": 120}
    for key in ("generatedAt", "traders", "collectors", "warnings", "topology", "switch", "target"):
        assert key in data


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_renderer_handles_an_empty_report(name: str) -> None:
    empty = report(total=figures(counts={}), desks=(), findings=(), sources=())
    out = RENDERERS[name](empty)
    assert out.endswith("\n")
    assert "prod-voice" in out or name == "csv"
