"""`recon verify-archive` reports as text (terminal), JSON (tools) and Markdown (a ticket).

Text: a header, one line per gap (and per unexpected conversation), then the totals.
Markdown: a title, the totals, a table of the gaps (| Conversation | Started (UTC) | Gap |
Detail |) and one of the unexpected conversations.

JSON (`format_version` 1; keys are only ever added within a format version):

    {"format_version": 1, "recon_version", "bucket", "orgId",
     "period": {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"},          # inclusive UTC days
     "totals": {"conversations", "gaps", "ok", "missing-recording", "missing-metadata",
                "bad-metadata", "hash-mismatch", "unexpected"},
     "gaps": [Finding], "unexpected": [Finding]}
    Finding = {"conversationId", "outcome", "startTime" (ISO UTC or null), "folder",
               "fields" [metadata field names, bad-metadata only], "detail"}

Called by: the CLI (`recon verify-archive`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from reconciler import __version__
from reconciler.engine.archive_integrity import GAPS, Finding, IntegrityReport, Outcome

FORMAT_VERSION = 1


def _when(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "conversationId": finding.conversation_id,
        "outcome": finding.outcome.value,
        "startTime": _when(finding.start),
        "folder": finding.folder,
        "fields": list(finding.fields),
        "detail": finding.detail,
    }


def render_json(report: IntegrityReport) -> str:
    document = {
        "format_version": FORMAT_VERSION,
        "recon_version": __version__,
        "bucket": report.bucket,
        "orgId": report.org_id,
        "period": {"from": report.first.isoformat(), "to": report.last.isoformat()},
        "totals": report.totals,
        "gaps": [_finding_json(f) for f in report.gaps],
        "unexpected": [_finding_json(f) for f in report.unexpected],
    }
    return json.dumps(document, indent=2) + "\n"


def _totals_line(report: IntegrityReport) -> str:
    totals = report.totals
    parts = [f"{totals['conversations']} conversations", f"{totals['ok']} ok", f"{totals['gaps']} gaps"]
    parts += [f"{totals[o.value]} {o.value}" for o in GAPS if totals[o.value]]
    if totals[Outcome.UNEXPECTED.value]:
        parts.append(f"{totals[Outcome.UNEXPECTED.value]} unexpected (not gaps)")
    return ", ".join(parts)


def _subject(report: IntegrityReport) -> str:
    return f"s3://{report.bucket}/{report.org_id}/ from {report.first} to {report.last} (UTC, inclusive)"


def _fields(finding: Finding) -> str:
    return f" [{', '.join(finding.fields)}]" if finding.fields else ""


def render_text(report: IntegrityReport) -> str:
    lines = [f"Archive integrity of {_subject(report)}"]
    for finding in report.gaps + report.unexpected:
        started = _when(finding.start) or "?"
        lines.append(
            f"  {finding.outcome.value:<17} {finding.conversation_id}  started {started}"
            f"{_fields(finding)}  {finding.detail}".rstrip()
        )
    if not report.findings:
        lines.append("  the platform lists no conversations in this period, and the archive holds none")
    lines.append(f"Totals: {_totals_line(report)}")
    lines.append("Result: " + ("GAPS FOUND" if report.has_gaps else "every recording is archived and intact"))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: IntegrityReport) -> str:
    verdict = "gaps found" if report.has_gaps else "no gaps"
    lines = [
        f"## Archive integrity: {verdict}",
        "",
        f"`{_subject(report)}`",
        "",
        f"**Totals:** {_totals_line(report)}",
        "",
    ]
    if report.gaps:
        lines += ["| Conversation | Started (UTC) | Gap | Detail |", "| --- | --- | --- | --- |"]
        lines += [
            f"| `{f.conversation_id}` | {_when(f.start) or '?'} | {f.outcome.value}{_cell(_fields(f))} "
            f"| {_cell(f.detail)} |"
            for f in report.gaps
        ]
        lines.append("")
    if report.unexpected:
        lines += [
            "Unexpected (in the archive, unknown to the platform in the period; not gaps):",
            "",
            "| Conversation | Folder |",
            "| --- | --- |",
        ]
        lines += [f"| `{f.conversation_id}` | `{_cell(f.folder)}` |" for f in report.unexpected]
        lines.append("")
    return "\n".join(lines)
