"""Continuous capture verification inside `recon runtime`: the collectors poll their TradeSense
servers, and every check interval the recent calls are matched against the platform's
recordings; a call that is not recorded (critical) or only partly recorded (major) raises an
alert at once.

Alert latency. A CDR reaches the store within one poll interval of the call's end (the switch
reports a call when it ends); a call without a recording becomes `not_recorded` when its
late-recording grace has passed; the check runs every `interval_s` (the topology's shortest
poll interval). So a gap is alerted at most one poll interval plus the grace (plus one check)
after the call ended — the figure the issue asks for, measured by the alert-latency test.

The calls checked are those of the last `lookback_ms` (default: the grace plus 2 hours, so a
call of up to two hours is still in view when its grace ends; longer calls are still verified
by `recon verify`) whose verdict is not final yet. A call is settled once verified, partial,
not recorded or exempt, and the recording it paired with is claimed, so it cannot pair with
another call later; only the span of the open calls is asked of the platform (nothing at all
when none is open). Recordings without a CDR (minor) are left to `recon verify`. Each finding is alerted once per process (`capture_gap` for critical and
major findings, keyed by the finding key; a reviewer's triage tag set before the alert
silences it); a restart may alert a still-open gap once more (at-least-once). Collector
alerts (collector_down, unauthorized, ha_mismatch, ...) are forwarded as they come.

Called by: reconciler.cli.runtime_commands (`recon runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from reconciler.runtime.alerts import Alert
from reconciler.runtime.verification.batch import TopologyPlan, build_report_and_pairs
from reconciler.runtime.verification.collector import Collector
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import Verdict, from_ms, iso_ms
from reconciler.runtime.verification.platform import PlatformRecordings
from reconciler.runtime.verification.report import SourceStatus, VerificationReport
from reconciler.runtime.verification.triage import Triage

log = logging.getLogger("reconciler.runtime")
ALERTED_SEVERITIES = ("critical", "major")
DEFAULT_EXTRA_LOOKBACK_MS = 2 * 3600_000
FINAL = frozenset({"not_recorded", "partial", "exempt"})
"""Finding verdicts that settle a call (with verified); pending ones are checked again."""


class ContinuousVerifier:
    """See the module docstring. One event loop; `run` until `stop` is set."""

    def __init__(
        self,
        plan: TopologyPlan,
        collectors: Sequence[Collector],
        store: CursorStore,
        platform: PlatformRecordings,
        triage: Callable[[], Mapping[str, Triage]],
        alert: Callable[[Alert], None],
        *,
        interval_s: float,
        lookback_ms: int | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.plan = plan
        self.collectors = list(collectors)
        self.store = store
        self.platform = platform
        self.triage = triage
        self.alert = alert
        self.interval_s = interval_s
        self.lookback_ms = lookback_ms or plan.tolerances.grace_ms + DEFAULT_EXTRA_LOOKBACK_MS
        self._now_ms = now_ms
        self.alerted: set[str] = set()
        self.settled: dict[str, int] = {}
        """Calls with a final verdict: cdr_id -> start (pruned once out of the lookback)."""
        self.claimed: dict[str, int] = {}
        """Recordings paired with a settled call: recording_id -> the call's start."""
        self.totals: Counter[str] = Counter()
        """Final verdicts of the calls settled by this process."""
        self.pending = 0
        """Calls still within their grace at the last check."""
        self.checks = 0
        self.last: VerificationReport | None = None

    def _settle(self, cdr_id: str, start_ms: int, verdict: str, recording_id: str | None) -> None:
        self.settled[cdr_id] = start_ms
        self.totals[verdict] += 1
        if recording_id is not None:
            self.claimed[recording_id] = start_ms

    def _prune(self, before_ms: int) -> None:
        for table in (self.settled, self.claimed):
            for key in [k for k, start in table.items() if start < before_ms]:
                del table[key]

    async def check_once(self) -> VerificationReport:
        """Match the calls still open in the last `lookback_ms` and alert each new critical or
        major finding. A call whose verdict is final (verified, partial, not recorded, exempt)
        is settled: it is not matched again, and its recording cannot pair with another call.
        The platform is asked only about the span of the open calls (with no open call, not at
        all), so a steady floor costs a few analytics pages per check, not the whole lookback."""
        now = self._now_ms()
        start = now - self.lookback_ms
        margin = self.plan.margin_ms
        self._prune(start - margin)
        stored = self.store.cdrs(None, start - margin, now)
        open_cdrs = [c for c in stored if c.collector in self.plan.collectors and c.cdr_id not in self.settled]
        first = min((c.start_ms for c in open_cdrs), default=now)
        recordings = []
        if open_cdrs:
            found = await self.platform.recordings(from_ms(first - margin), from_ms(now + margin))
            recordings = [r for r in found if r.recording_id not in self.claimed]
        sources = [
            SourceStatus(c.name, not c.down, 0, "collector down" if c.down else "polling") for c in self.collectors
        ]
        report, pairs = build_report_and_pairs(
            self.plan,
            open_cdrs,
            recordings,
            period=(first, now + 1),
            now_ms=now,
            triage=self.triage(),
            sources=sources,
            labels=(iso_ms(first), iso_ms(now)),
        )
        starts = {c.cdr_id: c.start_ms for c in open_cdrs}
        for cdr_id, recording_id in pairs:
            self._settle(cdr_id, starts[cdr_id], Verdict.VERIFIED.value, recording_id)
        for finding in report.findings:
            if finding.cdr_id is not None and finding.verdict in FINAL:
                self._settle(finding.cdr_id, starts[finding.cdr_id], finding.verdict, finding.recording_id)
        self.pending = report.total.counts.get(Verdict.PENDING.value, 0)
        for finding in report.findings:
            if finding.severity not in ALERTED_SEVERITIES or finding.triage is not None:
                continue
            if finding.key in self.alerted:
                continue
            self.alerted.add(finding.key)
            what = "not recorded" if finding.verdict == "not_recorded" else finding.verdict.replace("_", " ")
            self.alert(
                Alert(
                    kind="capture_gap",
                    severity=finding.severity,
                    summary=f"call of trader {finding.trader_id} at {finding.start} {what}",
                    detail={
                        "topology": self.plan.name,
                        "verdict": finding.verdict,
                        "trader": finding.trader_id,
                        "desks": ", ".join(finding.desks),
                        "collector": finding.collector,
                        "cdrId": finding.cdr_id,
                        "recordingId": finding.recording_id,
                        "start": finding.start,
                        "durationMs": finding.duration_ms,
                        "detail": finding.detail,
                        "triage": f"recon triage set {finding.key} --tag TAG --note TEXT",
                    },
                    at=iso_ms(now),
                    key=finding.key,
                )
            )
        self.platform.forget_before(dt.datetime.fromtimestamp((start - margin) / 1000, dt.UTC))
        self.checks += 1
        self.last = report
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the collectors and check every `interval_s` until `stop` is set."""
        pollers = [asyncio.create_task(c.run(stop)) for c in self.collectors]
        try:
            while not stop.is_set():
                try:
                    await self.check_once()
                except Exception as exc:  # a platform outage must not end the runtime
                    log.error("capture verification check failed (%s: %s)", type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            stop.set()
            await asyncio.gather(*pollers, return_exceptions=True)
