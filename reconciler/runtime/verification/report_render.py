"""Renderers of a capture-verification report: text (terminal), JSON, CSV (findings), Markdown and
a self-contained HTML page, each a pure function VerificationReport -> str (`RENDERERS` by name).

Values come from outside (switch CDRs, recording platform, reviewers' notes), so every renderer
escapes for its format: control characters in text, formula-leading cells in CSV (through
reconciler.csvsafe, the one CSV writer), `|` and HTML in Markdown cells, HTML autoescape
(jinja2) in the page.

Called by: the CLI (`recon verify --format ...`), the verification service when it stores a report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import jinja2

from reconciler import csvsafe
from reconciler.runtime.verification.model import CDR_CHANGED, INVALID_CDR
from reconciler.runtime.verification.report import (
    COUNT_KEYS,
    EXIT_FAIL,
    EXIT_REVIEW,
    Figures,
    ReportFinding,
    VerificationReport,
)

GAUGE_CELLS = 20
TRIAGE_HINT = "triage a finding: recon triage set KEY --tag TAG --note TEXT"
COUNT_LABELS: dict[str, str] = {key: key.replace("_", " ") for key in COUNT_KEYS} | {"recorded_without_cdr": "no CDR"}
RESULTS: dict[int, str] = {
    0: "OK: every call accounted for",
    EXIT_REVIEW: "REVIEW: untriaged findings or incomplete sources",
    EXIT_FAIL: "FAIL: below target or calls not recorded",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

SWITCH_ANOMALIES = (INVALID_CDR, CDR_CHANGED)
"""Finding verdicts that are the switch's anomalies, not calls (they are not triaged)."""


def percent(value: float | None) -> str:
    """99.90%; "n/a" for None. Below 1 never shows as 100.00% (it would hide a miss)."""
    if value is None:
        return "n/a"
    text = f"{value * 100:.2f}%"
    return "99.99%" if text == "100.00%" and value < 1 else text


def status(figures: Figures) -> str:
    """PASS, BELOW or n/a."""
    return {True: "PASS", False: "BELOW", None: "n/a"}[figures.meets_target]


def gauge_bar(compliance: float | None) -> str:
    """A 20-cell text bar, filled = round(compliance * 20); "n/a" for None."""
    if compliance is None:
        return "n/a"
    filled = max(0, min(GAUGE_CELLS, round(compliance * GAUGE_CELLS)))
    return "█" * filled + "░" * (GAUGE_CELLS - filled)


def ordered_findings(report: VerificationReport) -> tuple[tuple[ReportFinding, ...], tuple[ReportFinding, ...]]:
    """(untriaged, the rest: triaged, pending, exempt), each in report order."""
    untriaged = report.untriaged
    keys = {finding.key for finding in untriaged}
    return untriaged, tuple(finding for finding in report.findings if finding.key not in keys)


def _text_cell(value: object) -> str:
    """One line of printable text (no terminal escape sequences from outside data)."""
    if value is None:
        return "-"
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[_text_cell(cell) for cell in row] for row in rows]
    widths = [max(len(row[index]) for row in [list(headers), *cells]) for index in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *cells]
    ]


def _counts(figures: Figures) -> list[int]:
    """The COUNT_KEYS counts of `figures`, in that order (0 when missing)."""
    return [figures.counts.get(key, 0) for key in COUNT_KEYS]


def _figures_rows(groups: Sequence[Figures]) -> list[list[object]]:
    return [[f.name, percent(f.compliance), percent(f.target), status(f), *_counts(f)] for f in groups]


def _triage_text(finding: ReportFinding) -> str:
    triage = finding.triage
    return "-" if triage is None else f"{triage.tag} ({triage.reviewer}): {triage.note}"


def render_text(report: VerificationReport) -> str:
    """A human summary for the terminal."""
    tol = ", ".join(f"{key} {value}" for key, value in report.tolerances.items())
    lines = [
        f"Capture verification — {_text_cell(report.topology)}",
        f"switch {_text_cell(report.switch)}   period {report.period_from} to {report.period_to}"
        f"   target {percent(report.target)}",
        f"generated {report.generated_at}   tolerances (ms): {_text_cell(tol)}",
        f"result: {RESULTS.get(report.exit_code(), '?')}",
        "",
    ]
    headers = ["DESK", "COMPLIANCE", "TARGET", "STATUS", *(COUNT_LABELS[key].upper() for key in COUNT_KEYS)]
    lines += _table(headers, [*_figures_rows(report.desks), ["TOTAL", *_figures_rows([report.total])[0][1:]]])
    if report.collectors:
        lines += ["", *_table(["COLLECTOR", *headers[1:]], _figures_rows(report.collectors))]
    lines += ["", "Sources"]
    for source in report.sources:
        mark = "ok" if source.ok else "INCOMPLETE"
        lines.append(f"  {mark:<10}  {_text_cell(source.collector)}  {source.cdrs} CDRs  {_text_cell(source.detail)}")
    incomplete = [source.collector for source in report.sources if not source.ok]
    if incomplete:
        lines.append(f"  report INCOMPLETE for: {_text_cell(', '.join(incomplete))}")
    skew = {name: value for name, value in report.skew_ms.items() if value}
    if skew:
        lines += ["", "Clock skew (recorder minus switch)"]
        lines += [f"  {_text_cell(name)}  {value:+d} ms" for name, value in skew.items()]
    if report.warnings:
        lines += ["", "Warnings", *(f"  - {_text_cell(warning)}" for warning in report.warnings)]
    untriaged, rest = ordered_findings(report)
    lines += ["", f"Findings: {len(report.findings)} ({len(untriaged)} to review)"]
    if untriaged or rest:
        rows = [
            [f.severity.upper(), f.verdict, f.trader_id, f.start, f.cdr_id, f.recording_id, f.detail, _triage_text(f)]
            for f in (*untriaged, *rest)
        ]
        headers = ["SEVERITY", "VERDICT", "TRADER", "START", "CDR", "RECORDING", "DETAIL", "TRIAGE"]
        lines += _table(headers, rows)
        triageable = [f for f in (*untriaged, *rest) if f.verdict not in SWITCH_ANOMALIES]
        if triageable:
            example = _text_cell(triageable[0].key)
            lines += ["", f"{TRIAGE_HINT}  (KEY is <verdict>:<cdr or recording id>, e.g. {example})"]
        if len(triageable) < len(untriaged) + len(rest):
            lines += ["", f"{' / '.join(SWITCH_ANOMALIES)} findings come from the switch: fix them there (not triaged)"]
    return "\n".join(lines) + "\n"


def render_json(report: VerificationReport) -> str:
    """The report's `to_json`, indented."""
    return json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n"


CSV_HEADER = (
    "key,severity,verdict,trader_id,desks,collector,cdr_id,recording_id,conversation_id,start,duration_ms,"
    "detail,triage_tag,triage_reviewer,triage_note"
)
"""The CSV's first line (without the newline)."""


def render_csv(report: VerificationReport) -> str:
    """One row per finding, in report order, through the one spreadsheet-safe writer
    (reconciler.csvsafe: formula-leading cells guarded, numbers kept)."""
    rows = []
    for f in report.findings:
        triage = f.triage
        ids = (f.cdr_id, f.recording_id, f.conversation_id)
        notes = (None, None, None) if triage is None else (triage.tag, triage.reviewer, triage.note)
        head = (f.key, f.severity, f.verdict, f.trader_id, ";".join(f.desks), f.collector)
        rows.append((*head, *ids, f.start, f.duration_ms, f.detail, *notes))
    return csvsafe.render(CSV_HEADER.split(","), rows)


def _gauge_view(figures: Figures) -> dict[str, Any]:
    width = 200.0
    meets = figures.meets_target
    compliance = figures.compliance
    return {
        "name": figures.name,
        "compliance": percent(compliance),
        "target": percent(figures.target),
        "bar": gauge_bar(compliance),
        "status": {True: "✅ meets", False: "❌ below", None: "– n/a"}[meets],
        "css": {True: "pass", False: "below", None: "na"}[meets],
        "fill": f"{width * min(max(compliance or 0.0, 0.0), 1.0):.1f}",
        "target_x": f"{width * min(max(figures.target, 0.0), 1.0):.1f}",
        "colour": {True: "#2e7d32", False: "#c62828", None: "#9e9e9e"}[meets],
        "counts": _counts(figures),
        "calls": figures.calls,
    }


def _finding_view(finding: ReportFinding) -> dict[str, Any]:
    triage = finding.triage
    return {
        "key": finding.key,
        "severity": finding.severity,
        "verdict": finding.verdict,
        "trader": finding.trader_id,
        "desks": ", ".join(finding.desks),
        "collector": finding.collector or "–",
        "start": finding.start,
        "cdr": finding.cdr_id or "–",
        "recording": finding.recording_id or "–",
        "detail": finding.detail,
        "triage": "" if triage is None else f"{triage.tag} by {triage.reviewer}: {triage.note}",
    }


def _view(report: VerificationReport) -> dict[str, Any]:
    untriaged, rest = ordered_findings(report)
    return {
        "r": report,
        "result": RESULTS.get(report.exit_code(), "?"),
        "desks": [_gauge_view(desk) for desk in report.desks],
        "total": _gauge_view(report.total),
        "collectors": [_gauge_view(collector) for collector in report.collectors],
        "labels": [COUNT_LABELS[key] for key in COUNT_KEYS],
        "tolerances": ", ".join(f"{key} {value}" for key, value in report.tolerances.items()),
        "skew": {name: f"{value:+d} ms" for name, value in report.skew_ms.items() if value},
        "untriaged": [_finding_view(finding) for finding in untriaged],
        "rest": [_finding_view(finding) for finding in rest],
        "hint": TRIAGE_HINT,
    }


def _md_cell(value: object) -> object:
    """Every Markdown expression: one line, `|` escaped, HTML special characters as entities."""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub(" ", value).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


MARKDOWN_TEMPLATE = """\
# Capture verification — {{ r.topology }} — {{ r.period_from }} to {{ r.period_to }}

Switch **{{ r.switch }}** · target **{{ total.target }}** · generated {{ r.generated_at }} · tolerances (ms): {{ tolerances }}

**Result:** {{ result }}

| Desk | Compliance | Target | Gauge | Status |
|---|---:|---:|---|---|
{% for g in desks %}
| {{ g.name }} | {{ g.compliance }} | {{ g.target }} | `{{ g.bar }}` | {{ g.status }} |
{% endfor %}
| **Total** | **{{ total.compliance }}** | {{ total.target }} | `{{ total.bar }}` | {{ total.status }} |

## Counts per verdict

| Group |{% for label in labels %} {{ label }} |{% endfor %}

|---|{% for label in labels %}---:|{% endfor %}

{% for g in desks + [total] %}
| {{ g.name }} |{% for n in g.counts %} {{ n }} |{% endfor %}

{% endfor %}
{% if collectors %}

## Collectors

| Collector | Compliance | Target | Status | Calls |
|---|---:|---:|---|---:|
{% for g in collectors %}
| {{ g.name }} | {{ g.compliance }} | {{ g.target }} | {{ g.status }} | {{ g.calls }} |
{% endfor %}
{% endif %}

## Sources

| Collector | State | CDRs | Detail |
|---|---|---:|---|
{% for s in r.sources %}
| {{ s.collector }} | {{ "ok" if s.ok else "⚠️ INCOMPLETE" }} | {{ s.cdrs }} | {{ s.detail }} |
{% endfor %}
{% if skew %}

Clock skew (recorder minus switch): {% for name, value in skew.items() %}{{ name }} {{ value }}{{ "; " if not loop.last else "" }}{% endfor %}

{% endif %}
{% if r.warnings %}

## Warnings

{% for w in r.warnings %}
- {{ w }}
{% endfor %}
{% endif %}
{% for title, rows in [("Findings to review", untriaged), ("Triaged and informational findings", rest)] if rows %}

## {{ title }} ({{ rows | length }})

| Severity | Verdict | Trader | Desks | Start | CDR | Recording | Detail | Triage |
|---|---|---|---|---|---|---|---|---|
{% for f in rows %}
| {{ f.severity }} | {{ f.verdict }} | {{ f.trader }} | {{ f.desks }} | {{ f.start }} | {{ f.cdr }} | {{ f.recording }} | {{ f.detail }} | {{ f.triage or "–" }} |
{% endfor %}
{% endfor %}
{% if untriaged or rest %}

_{{ hint }}_ (KEY e.g. `{{ (untriaged + rest)[0].key }}`)
{% endif %}
"""

HTML_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Capture verification — {{ r.topology }} — {{ r.period_from }} to {{ r.period_to }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#212121}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td.n{text-align:right}.pass{color:#2e7d32}.below{color:#c62828;font-weight:bold}.na{color:#757575}
.bad{background:#ffebee}.critical{color:#c62828;font-weight:bold}.major{color:#e65100}
</style></head><body>
<h1>Capture verification — {{ r.topology }} — {{ r.period_from }} to {{ r.period_to }}</h1>
<p>Switch <b>{{ r.switch }}</b> · target <b>{{ total.target }}</b> · generated {{ r.generated_at }}
· tolerances (ms): {{ tolerances }}</p>
<p><b>Result:</b> {{ result }}</p>
<h2>Compliance per desk</h2>
<table><tr><th>Desk</th><th>Compliance</th><th>Target</th><th>Gauge</th><th>Status</th></tr>
{% for g in desks + [total] %}
<tr><td>{{ "Total" if loop.last else g.name }}</td><td class="n {{ g.css }}">{{ g.compliance }}</td>
<td class="n">{{ g.target }}</td><td><svg width="210" height="20" viewBox="0 0 210 20" role="img">
<title>{{ g.name }}: {{ g.compliance }} (target {{ g.target }})</title>
<rect x="0" y="4" width="200" height="12" fill="#e0e0e0"/>
<rect x="0" y="4" width="{{ g.fill }}" height="12" fill="{{ g.colour }}"/>
<line x1="{{ g.target_x }}" y1="0" x2="{{ g.target_x }}" y2="20" stroke="#212121" stroke-width="2"/></svg></td>
<td class="{{ g.css }}">{{ g.status }}</td></tr>
{% endfor %}
</table>
<h2>Counts per verdict</h2>
<table><tr><th>Group</th>{% for label in labels %}<th>{{ label }}</th>{% endfor %}</tr>
{% for g in desks + [total] %}
<tr><td>{{ g.name }}</td>{% for n in g.counts %}<td class="n">{{ n }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% if collectors %}
<h2>Collectors</h2>
<table><tr><th>Collector</th><th>Compliance</th><th>Target</th><th>Status</th></tr>
{% for g in collectors %}
<tr><td>{{ g.name }}</td><td class="n {{ g.css }}">{{ g.compliance }}</td><td class="n">{{ g.target }}</td>
<td class="{{ g.css }}">{{ g.status }}</td></tr>
{% endfor %}
</table>
{% endif %}
<h2>Sources</h2>
<table><tr><th>Collector</th><th>State</th><th>CDRs</th><th>Detail</th></tr>
{% for s in r.sources %}
<tr{% if not s.ok %} class="bad"{% endif %}><td>{{ s.collector }}</td>
<td>{{ "ok" if s.ok else "INCOMPLETE" }}</td><td class="n">{{ s.cdrs }}</td><td>{{ s.detail }}</td></tr>
{% endfor %}
</table>
{% if skew %}<p>Clock skew (recorder minus switch):
{% for name, value in skew.items() %}{{ name }} {{ value }}{{ "; " if not loop.last else "" }}{% endfor %}</p>{% endif %}
{% if r.warnings %}<h2>Warnings</h2><ul>{% for w in r.warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}
{% for title, rows in [("Findings to review", untriaged), ("Triaged and informational findings", rest)] if rows %}
<h2>{{ title }} ({{ rows | length }})</h2>
<table><tr><th>Severity</th><th>Verdict</th><th>Trader</th><th>Desks</th><th>Start</th><th>CDR</th><th>Recording</th>
<th>Detail</th><th>Triage</th><th>Key</th></tr>
{% for f in rows %}
<tr><td class="{{ f.severity }}">{{ f.severity }}</td><td>{{ f.verdict }}</td><td>{{ f.trader }}</td><td>{{ f.desks }}</td>
<td>{{ f.start }}</td><td>{{ f.cdr }}</td><td>{{ f.recording }}</td><td>{{ f.detail }}</td><td>{{ f.triage }}</td>
<td><code>{{ f.key }}</code></td></tr>
{% endfor %}
</table>
{% endfor %}
{% if untriaged or rest %}<p><i>{{ hint }}</i></p>{% endif %}
</body></html>
"""

_OPTIONS: dict[str, Any] = {"undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True}
_MARKDOWN = jinja2.Environment(autoescape=False, finalize=_md_cell, **_OPTIONS).from_string(MARKDOWN_TEMPLATE)
_HTML = jinja2.Environment(autoescape=True, **_OPTIONS).from_string(HTML_TEMPLATE)


def render_markdown(report: VerificationReport) -> str:
    """A Markdown summary with a per-desk text gauge, then collectors, sources and findings."""
    return _MARKDOWN.render(_view(report)).rstrip("\n") + "\n"


def render_html(report: VerificationReport) -> str:
    """A self-contained HTML page (inline CSS, no scripts) with a per-desk SVG gauge."""
    return _HTML.render(_view(report)).rstrip("\n") + "\n"


RENDERERS: dict[str, Callable[[VerificationReport], str]] = {
    "text": render_text,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
    "html": render_html,
}
