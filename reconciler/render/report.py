"""The result of `recon validate` as one value, and its text and JSON renderings.

The JSON format is versioned (`formatVersion`); fields are only ever added. Secrets cannot
appear: diagnostics and findings never carry input values.

Called by: the CLI (`recon validate`), render.sarif.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import click

from reconciler import __version__
from reconciler.diagnostics import Diagnostic
from reconciler.errors import EXIT_BLOCKED, EXIT_ERROR, EXIT_OK
from reconciler.policy import Finding, Severity, Waived

FORMAT_VERSION = 1


@dataclass(slots=True)
class ValidationReport:
    as_of: dt.date
    files: list[str] = field(default_factory=list)
    resources: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    waived: list[Waived] = field(default_factory=list)
    references_checked: bool = True

    @property
    def exit_code(self) -> int:
        if self.diagnostics:
            return EXIT_ERROR
        if any(f.severity is Severity.ERROR for f in self.findings):
            return EXIT_BLOCKED
        return EXIT_OK

    @property
    def status(self) -> str:
        return {EXIT_OK: "passed", EXIT_ERROR: "input-errors", EXIT_BLOCKED: "blocked"}[self.exit_code]

    def counts(self) -> dict[str, int]:
        return {
            "inputErrors": len(self.diagnostics),
            "errors": sum(f.severity is Severity.ERROR for f in self.findings),
            "warnings": sum(f.severity is Severity.WARNING for f in self.findings),
            "waived": len(self.waived),
        }


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code,
        "message": d.message,
        "hint": d.hint,
        "file": d.location.file,
        "line": d.location.line,
        "column": d.location.column,
        "field": d.field,
        "resource": d.resource,
    }


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule_id,
        "severity": str(f.severity),
        "resource": f.resource,
        "message": f.message,
        "remediation": f.remediation,
        "file": f.location.file,
        "line": f.location.line,
        "column": f.location.column,
        "field": f.field,
    }


def render_json(report: ValidationReport) -> str:
    document = {
        "formatVersion": FORMAT_VERSION,
        "tool": {"name": "recon", "version": __version__},
        "asOf": report.as_of.isoformat(),
        "status": report.status,
        "exitCode": report.exit_code,
        "files": report.files,
        "resources": report.resources,
        "summary": report.counts(),
        "inputErrors": [diagnostic_json(d) for d in report.diagnostics],
        "findings": [finding_json(f) for f in report.findings],
        "waived": [{**finding_json(w.finding), "waiver": w.waiver} for w in report.waived],
    }
    return json.dumps(document, indent=2) + "\n"


def _colour(text: str, severity: str) -> str:
    return click.style(text, fg="red" if severity == "error" else "yellow", bold=True)


def render_text(report: ValidationReport) -> str:
    """Human output. ANSI colours are added here and stripped by click.echo off a TTY."""
    lines: list[str] = []
    for d in report.diagnostics:
        where = f"{d.field}: " if d.field else ""
        lines.append(f"{d.location}: {_colour('error', 'error')}: {where}{d.message}")
        if d.hint:
            lines.append(f"    hint: {d.hint}")
    for f in report.findings:
        label = _colour(f"{f.severity}[{f.rule_id}]", str(f.severity))
        lines.append(f"{f.location}: {label} {f.resource} {f.field}")
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.remediation}")
    for w in report.waived:
        lines.append(f"{w.finding.location}: waived[{w.finding.rule_id}] {w.finding.resource} by {w.waiver}")
    c = report.counts()
    if report.diagnostics:
        summary = f"{c['inputErrors']} input error(s) in {len(report.files)} file(s)"
        if not report.references_checked:
            summary += "; references were not checked because a file could not be read"
        summary += "; compliance rules were not evaluated — fix the input first, nothing was changed"
    else:
        summary = (
            f"{report.resources} resources in {len(report.files)} files, as of {report.as_of}: "
            f"{c['errors']} error(s), {c['warnings']} warning(s), {c['waived']} waived — {report.status}"
        )
    lines.append(summary)
    return "\n".join(lines) + "\n"
