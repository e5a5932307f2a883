"""The capture-verification report: what a verification run found over a period, as plain frozen
data, ready for the renderers (report_render) and for the CLI's exit code.

- `Figures`: verdict counts and compliance for one group (a desk, a trader, a collector, or "all").
- `ReportFinding` (with its `TriageInfo` when a reviewer has looked at it): one call or recording
  that needs attention, keyed `<verdict>:<cdr_id or recording_id>`.
- `SourceStatus`: whether each collector's CDRs for the period could all be read.
- `VerificationReport`: all of the above plus the run's metadata; `to_json` (schema
  `recon.verification-report/v1`), `untriaged`, `exit_code`.

Pure data and pure functions, no I/O. Built by the verification service / `recon verify` from the
matcher's result; read by reconciler.runtime.verification.report_render and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.runtime.verification.model import Verdict

SCHEMA = "recon.verification-report/v1"
"""The `schema` key of `VerificationReport.to_json`."""

TRIAGED = "triaged"
"""Extra counts key: findings a reviewer excluded (false-positive, test-call, maintenance-window)."""

COUNT_KEYS: tuple[str, ...] = (*(verdict.value for verdict in Verdict), TRIAGED)
"""The counts keys every `Figures` reports (missing ones are 0), in display order."""

SEVERITY_RANK: dict[str, int] = {"critical": 0, "major": 1, "minor": 2, "info": 3, "ok": 4}
"""Sort rank of a finding's severity (unknown severities sort last)."""

EPSILON = 1e-12
"""Slack of the compliance-vs-target comparison (so 0.999 computed as 999/1000 meets 0.999)."""

EXIT_OK = 0
EXIT_REVIEW = 2
"""Untriaged major/minor findings, or a source that could not be fully read."""
EXIT_FAIL = 3
"""Below target (overall or on a desk), or an untriaged critical finding (a call not recorded)."""


@dataclass(frozen=True, slots=True)
class Figures:
    """Verdict counts and compliance of one group."""

    name: str
    """Desk, trader id, collector name, or "all"."""
    counts: Mapping[str, int]
    """Keys: Verdict values plus TRIAGED; a missing key is 0."""
    compliance: float | None
    """0..1; None when nothing counts."""
    target: float
    """0..1."""

    @property
    def meets_target(self) -> bool | None:
        """None when there is no compliance figure, else compliance >= target (with EPSILON)."""
        if self.compliance is None:
            return None
        return self.compliance >= self.target - EPSILON

    @property
    def calls(self) -> int:
        """verified + partial + not_recorded + exempt + triaged."""
        keys = (Verdict.VERIFIED, Verdict.PARTIAL, Verdict.NOT_RECORDED, Verdict.EXEMPT, TRIAGED)
        return sum(self.counts.get(key, 0) for key in keys)


@dataclass(frozen=True, slots=True)
class TriageInfo:
    """A reviewer's decision on a finding."""

    tag: str
    """E.g. "false-positive"."""
    note: str
    reviewer: str
    at: str
    """ISO-8601 UTC."""
    excludes: bool
    """True when the tag takes the finding out of compliance."""


@dataclass(frozen=True, slots=True)
class ReportFinding:
    """One call (or recording) that needs attention."""

    key: str
    """"<verdict>:<cdr_id or recording_id>"."""
    verdict: str
    """A Verdict value."""
    severity: str
    """"critical" | "major" | "minor" | "info" | "ok"."""
    trader_id: str
    desks: tuple[str, ...]
    collector: str | None
    """None for a recording without a CDR."""
    cdr_id: str | None
    recording_id: str | None
    conversation_id: str | None
    start: str
    """ISO-8601 UTC with milliseconds and Z, e.g. 2026-11-21T09:00:00.000Z."""
    duration_ms: int
    detail: str
    triage: TriageInfo | None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Whether one collector's CDRs of the period could all be read."""

    collector: str
    ok: bool
    """False when its CDRs could not all be read (the report is incomplete for it)."""
    cdrs: int
    """CDRs of the period used."""
    detail: str
    """E.g. "polled up to date" or "collector_down: ... (stored CDRs used)"."""


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """A capture-verification run over [period_from, period_to] (UTC days, inclusive)."""

    topology: str
    """CollectorTopology metadata.name."""
    switch: str
    period_from: str
    """ISO date, inclusive (UTC day)."""
    period_to: str
    """ISO date, inclusive."""
    generated_at: str
    """ISO-8601 UTC."""
    target: float
    """0..1."""
    tolerances: Mapping[str, int]
    """{"start_ms": .., "duration_ms": .., "grace_ms": ..}."""
    total: Figures
    """Name "all"."""
    desks: tuple[Figures, ...]
    traders: tuple[Figures, ...]
    collectors: tuple[Figures, ...]
    findings: tuple[ReportFinding, ...]
    """Sorted by (severity rank critical < major < minor < info, start, key): see `sort_findings`."""
    sources: tuple[SourceStatus, ...]
    skew_ms: Mapping[str, int]
    """Per collector, recorder minus switch."""
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with camelCase keys (schema `recon.verification-report/v1`)."""
        return {
            "schema": SCHEMA,
            "topology": self.topology,
            "switch": self.switch,
            "period": {"from": self.period_from, "to": self.period_to},
            "generatedAt": self.generated_at,
            "target": self.target,
            "tolerances": {_camel(key): value for key, value in self.tolerances.items()},
            "total": _figures_json(self.total),
            "desks": [_figures_json(figures) for figures in self.desks],
            "traders": [_figures_json(figures) for figures in self.traders],
            "collectors": [_figures_json(figures) for figures in self.collectors],
            "findings": [_finding_json(finding) for finding in self.findings],
            "sources": [
                {"collector": source.collector, "ok": source.ok, "cdrs": source.cdrs, "detail": source.detail}
                for source in self.sources
            ],
            "skewMs": dict(self.skew_ms),
            "warnings": list(self.warnings),
        }

    @property
    def untriaged(self) -> tuple[ReportFinding, ...]:
        """Findings no reviewer has triaged, leaving out pending and exempt ones."""
        quiet = (Verdict.PENDING.value, Verdict.EXEMPT.value)
        return tuple(f for f in self.findings if f.triage is None and f.verdict not in quiet)

    def exit_code(self) -> int:
        """3 (EXIT_FAIL), 2 (EXIT_REVIEW) or 0 (EXIT_OK): see those constants."""
        untriaged = self.untriaged
        if (
            self.total.meets_target is False
            or any(desk.meets_target is False for desk in self.desks)
            or any(finding.severity == "critical" for finding in untriaged)
        ):
            return EXIT_FAIL
        if any(finding.severity in ("major", "minor") for finding in untriaged) or not all(
            source.ok for source in self.sources
        ):
            return EXIT_REVIEW
        return EXIT_OK


def finding_sort_key(finding: ReportFinding) -> tuple[int, str, str]:
    """(severity rank, start, key): the order of `VerificationReport.findings`."""
    return (SEVERITY_RANK.get(finding.severity, len(SEVERITY_RANK)), finding.start, finding.key)


def sort_findings(findings: Iterable[ReportFinding]) -> tuple[ReportFinding, ...]:
    """Findings in report order, for whoever builds a VerificationReport."""
    return tuple(sorted(findings, key=finding_sort_key))


def full_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Every COUNT_KEYS key (0 when missing), in that order, then any other key sorted."""
    result = {key: counts.get(key, 0) for key in COUNT_KEYS}
    result.update({key: counts[key] for key in sorted(counts) if key not in result})
    return result


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _figures_json(figures: Figures) -> dict[str, Any]:
    return {
        "name": figures.name,
        "counts": full_counts(figures.counts),
        "compliance": figures.compliance,
        "target": figures.target,
        "meetsTarget": figures.meets_target,
        "calls": figures.calls,
    }


def _finding_json(finding: ReportFinding) -> dict[str, Any]:
    triage = finding.triage
    return {
        "key": finding.key,
        "verdict": finding.verdict,
        "severity": finding.severity,
        "traderId": finding.trader_id,
        "desks": list(finding.desks),
        "collector": finding.collector,
        "cdrId": finding.cdr_id,
        "recordingId": finding.recording_id,
        "conversationId": finding.conversation_id,
        "start": finding.start,
        "durationMs": finding.duration_ms,
        "detail": finding.detail,
        "triage": None
        if triage is None
        else {
            "tag": triage.tag,
            "note": triage.note,
            "reviewer": triage.reviewer,
            "at": triage.at,
            "excludes": triage.excludes,
        },
    }
