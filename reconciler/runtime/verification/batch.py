"""One verification pass over a period: what `recon verify` and the continuous verifier share.

- `TopologyPlan.from_spec`: a CollectorTopology read for matching: tolerances, target,
  exemptions, trader id by platform user, and each trader's desks. A desk is a Queue whose
  manifest lists the trader's user among its `members` (a trader on two desks counts on both);
  a trader no Queue lists is on the desk `(unassigned)`, so nothing silently drops out.
- `catch_up`: poll each collector until its server has nothing more (bounded), and say per
  collector whether its CDRs are complete.
- `build_report_and_pairs`: match the period's CDRs against the recordings, estimate clock skew per
  collector, apply the reviewers' triage tags (false positive, test call and maintenance
  window take a finding out of compliance; missing recording and missing CDR confirm it) and
  sum the figures per trader, desk, collector and overall into a `VerificationReport`; the
  switch's anomalies of the period (CDRs that failed the checks, CDR ids re-sent changed) are
  findings too (major, `invalid_cdr` / `cdr_changed`, outside the compliance figures: they
  are not calls recon could match, and they are fixed at the switch, not triaged). Pure.

The period is [start_ms, end_ms). CDRs that started in it are verified; recordings are read
with a margin of the start tolerance plus the skew allowance either side, so a call at the
period's edge still meets its recording, and a recording outside the period that no CDR of the
period claims is left to the neighbouring period's report.

Called by: reconciler.cli.verify_commands, reconciler.runtime.verification.continuous.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.manifest.kinds.runtime import CollectorTopologySpec
from reconciler.runtime.verification.collector import Collector, PollResult
from reconciler.runtime.verification.compliance import UNASSIGNED, compliance
from reconciler.runtime.verification.matcher import Finding, match
from reconciler.runtime.verification.model import (
    ANOMALY_SEVERITY,
    SEVERITY,
    Cdr,
    CdrAnomaly,
    Exemption,
    Recording,
    Tolerances,
    Verdict,
    iso_ms,
    to_ms,
)
from reconciler.runtime.verification.report import (
    TRIAGED,
    Figures,
    ReportFinding,
    SourceStatus,
    TriageInfo,
    VerificationReport,
)
from reconciler.runtime.verification.skew import estimate_skew
from reconciler.runtime.verification.triage import Triage

SKEW_ALLOWANCE_MS = 60_000
"""How far apart the switch's and the recorder's clocks may be and still be measured."""
MAX_POLLS = 10_000
"""catch_up stops after this many polls of one collector (10,000 pages of CDRs)."""
_RANK = {"critical": 0, "major": 1, "minor": 2, "info": 3, "ok": 4}


@dataclass(frozen=True, slots=True)
class TopologyPlan:
    """A CollectorTopology, read for matching (see the module docstring)."""

    name: str
    switch: str
    tolerances: Tolerances
    target: float
    """0..1."""
    exemptions: tuple[Exemption, ...]
    traders_by_user: Mapping[str, str]
    """Platform user (e-mail, lower case) -> trader id."""
    desks: Mapping[str, tuple[str, ...]]
    """Trader id -> desks (queue names), sorted; (UNASSIGNED,) when none."""
    collectors: tuple[str, ...]

    @classmethod
    def from_spec(cls, name: str, spec: CollectorTopologySpec, members: Mapping[str, Iterable[str]]) -> TopologyPlan:
        """`members`: queue name -> member e-mails (the Queue manifests' `members`)."""
        desks_of_user: dict[str, set[str]] = {}
        for queue, users in members.items():
            for user in users:
                desks_of_user.setdefault(user.lower(), set()).add(queue)
        traders = [trader for collector in spec.collectors for trader in collector.traders]
        matching = spec.matching
        return cls(
            name=name,
            switch=spec.dataSource.switch,
            tolerances=Tolerances(
                matching.startTolerance.milliseconds,
                matching.durationTolerance.milliseconds,
                matching.lateRecordingGrace.milliseconds,
            ),
            target=spec.target / 100,
            exemptions=tuple(
                Exemption(to_ms(e.from_), to_ms(e.to), e.reason, trader_id=e.trader, line=e.line)
                for e in spec.exemptions
            ),
            traders_by_user={t.user.lower(): t.id for t in traders},
            desks={t.id: tuple(sorted(desks_of_user.get(t.user.lower(), ()))) or (UNASSIGNED,) for t in traders},
            collectors=tuple(c.name for c in spec.collectors),
        )

    @property
    def margin_ms(self) -> int:
        """How far outside the period recordings are read."""
        return self.tolerances.start_ms + SKEW_ALLOWANCE_MS


async def catch_up(collector: Collector, alerts: Sequence[tuple[str, str]]) -> SourceStatus:
    """Poll `collector` until its server has nothing more; `alerts` is the list its alert
    callback appends to (read for the reason when a poll fails)."""
    seen = len(alerts)
    result = PollResult(None)
    for _ in range(MAX_POLLS):
        result = await collector.poll_once()
        if not result.ok or not result.more:
            break
    if result.ok and not result.more:
        return SourceStatus(collector.name, True, 0, "polled up to date")
    if result.ok:
        return SourceStatus(collector.name, False, 0, f"still more after {MAX_POLLS} polls; run again")
    reasons = "; ".join(f"{kind}: {detail}" for kind, detail in alerts[seen:]) or "no member could be polled"
    return SourceStatus(collector.name, False, 0, f"{reasons} (the CDRs stored so far are used)")


def _figures(name: str, counts: Mapping[str, int], target: float) -> Figures:
    by_verdict = {Verdict(k): v for k, v in counts.items() if k != TRIAGED}
    return Figures(name, dict(sorted(counts.items())), compliance(by_verdict), target)


def build_report_and_pairs(
    plan: TopologyPlan,
    cdrs: Sequence[Cdr],
    recordings: Sequence[Recording],
    *,
    period: tuple[int, int],
    now_ms: int,
    triage: Mapping[str, Triage],
    sources: Sequence[SourceStatus],
    labels: tuple[str, str],
    warnings: Sequence[str] = (),
    anomalies: Sequence[CdrAnomaly] = (),
) -> tuple[VerificationReport, list[tuple[str, str]]]:
    """The report of the CDRs that started in `period` ([start_ms, end_ms)), and the verified
    (cdr_id, recording_id) pairs (the report lists findings only; the continuous verifier
    needs the pairs to settle calls). `labels` are the period's first and last day as the user
    gave them."""
    start_ms, end_ms = period
    in_period = [c for c in cdrs if start_ms <= c.start_ms < end_ms and c.collector in plan.collectors]
    skew = estimate_skew(in_period, recordings, window_ms=SKEW_ALLOWANCE_MS)
    result = match(in_period, recordings, plan.tolerances, now_ms=now_ms, exemptions=plan.exemptions, skew_ms=skew)

    by_cdr = {c.cdr_id: c for c in in_period}
    total: Counter[str] = Counter()
    per_trader: dict[str, Counter[str]] = {}
    per_collector: dict[str, Counter[str]] = {c: Counter() for c in plan.collectors}

    def tally(outcome: str, trader: str, collector: str | None) -> None:
        total[outcome] += 1
        per_trader.setdefault(trader, Counter())[outcome] += 1
        if collector is not None:
            per_collector.setdefault(collector, Counter())[outcome] += 1

    for cdr_id in result.verified_cdr_ids:
        cdr = by_cdr[cdr_id]
        tally(Verdict.VERIFIED.value, cdr.trader_id, cdr.collector)
    recording_by_id = {r.recording_id: r for r in recordings}
    for recording_id in result.pending_recording_ids:
        rec = recording_by_id[recording_id]
        if start_ms <= rec.start_ms < end_ms:
            tally(Verdict.PENDING.value, rec.trader_id, None)

    findings: list[ReportFinding] = []
    for finding in result.findings:
        reported = _finding(plan, finding, triage.get(finding.key))
        if finding.cdr is None and not start_ms <= reported_start(finding) < end_ms:
            continue  # a recording of the neighbouring period
        outcome = TRIAGED if reported.triage is not None and reported.triage.excludes else finding.verdict.value
        tally(outcome, reported.trader_id, reported.collector)
        findings.append(reported)
    findings += [
        _anomaly_finding(plan, anomaly)
        for anomaly in anomalies
        if start_ms <= anomaly.at_ms < end_ms and anomaly.collector in plan.collectors
    ]
    findings.sort(key=lambda f: (_RANK.get(f.severity, 9), f.start, f.key))

    desks: dict[str, Counter[str]] = {}
    for trader, counts in per_trader.items():
        for desk in plan.desks.get(trader, (UNASSIGNED,)):
            desks.setdefault(desk, Counter()).update(counts)
    counted = {c.collector: sum(1 for x in in_period if x.collector == c.collector) for c in sources}
    report = VerificationReport(
        topology=plan.name,
        switch=plan.switch,
        period_from=labels[0],
        period_to=labels[1],
        generated_at=iso_ms(now_ms),
        target=plan.target,
        tolerances={
            "start_ms": plan.tolerances.start_ms,
            "duration_ms": plan.tolerances.duration_ms,
            "grace_ms": plan.tolerances.grace_ms,
        },
        total=_figures("all", total, plan.target),
        desks=tuple(_figures(d, desks[d], plan.target) for d in sorted(desks)),
        traders=tuple(_figures(t, per_trader[t], plan.target) for t in sorted(per_trader)),
        collectors=tuple(_figures(c, per_collector[c], plan.target) for c in sorted(per_collector)),
        findings=tuple(findings),
        sources=tuple(SourceStatus(s.collector, s.ok, counted.get(s.collector, 0), s.detail) for s in sources),
        skew_ms={c: ms for c, ms in sorted(skew.items()) if ms},
        warnings=tuple(warnings),
    )
    return report, list(result.verified_pairs())


def reported_start(finding: Finding) -> int:
    """The start of what the finding is about: the call's, else the recording's."""
    if finding.cdr is not None:
        return finding.cdr.start_ms
    assert finding.recording is not None
    return finding.recording.start_ms


def _anomaly_finding(plan: TopologyPlan, anomaly: CdrAnomaly) -> ReportFinding:
    return ReportFinding(
        key=anomaly.key,
        verdict=anomaly.kind,
        severity=ANOMALY_SEVERITY,
        trader_id=anomaly.trader_id,
        desks=plan.desks.get(anomaly.trader_id, (UNASSIGNED,)),
        collector=anomaly.collector,
        cdr_id=anomaly.cdr_id,
        recording_id=None,
        conversation_id=None,
        start=iso_ms(anomaly.at_ms),
        duration_ms=0,
        detail=f"{anomaly.detail} (from the {anomaly.member})",
        triage=None,
    )


def _finding(plan: TopologyPlan, finding: Finding, triage: Triage | None) -> ReportFinding:
    cdr, rec = finding.cdr, finding.recording
    trader = cdr.trader_id if cdr is not None else rec.trader_id if rec is not None else ""
    duration = cdr.duration_ms if cdr is not None else rec.duration_ms if rec is not None else 0
    return ReportFinding(
        key=finding.key,
        verdict=finding.verdict.value,
        severity=SEVERITY[finding.verdict],
        trader_id=trader,
        desks=plan.desks.get(trader, (UNASSIGNED,)),
        collector=cdr.collector if cdr is not None else None,
        cdr_id=cdr.cdr_id if cdr is not None else None,
        recording_id=rec.recording_id if rec is not None else None,
        conversation_id=rec.conversation_id if rec is not None else None,
        start=iso_ms(reported_start(finding)),
        duration_ms=duration,
        detail=finding.detail,
        triage=None
        if triage is None
        else TriageInfo(triage.tag.value, triage.note, triage.reviewer, triage.at, triage.excludes),
    )
