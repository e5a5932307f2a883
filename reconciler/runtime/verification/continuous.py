"""Continuous capture verification inside `recon runtime`: the collectors poll their TradeSense
servers, and every check interval the recent calls are matched against the platform's
recordings; a call that is not recorded (critical) or only partly recorded (major) raises an
alert at once.

Alert latency. A CDR reaches the store within one poll interval of the call's end (the switch
reports a call when it ends); a call without a recording becomes `not_recorded` when its
late-recording grace has passed; the check runs every `interval_s` (the topology's shortest
poll interval). So a gap is alerted at most one poll interval plus the grace (plus one check)
after the call ended — the figure the issue asks for, measured by the alert-latency test.

The window checked is the last `lookback_ms` (default: the grace plus 2 hours, so a call of up
to two hours is still in view when its grace ends); longer calls are still verified by
`recon verify`. Each finding is alerted once per process (`capture_gap` for critical and
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
from collections.abc import Callable, Mapping, Sequence

from reconciler.runtime.alerts import Alert
from reconciler.runtime.verification.batch import TopologyPlan, build_report
from reconciler.runtime.verification.collector import Collector
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import from_ms
from reconciler.runtime.verification.platform import PlatformRecordings
from reconciler.runtime.verification.report import SourceStatus, VerificationReport
from reconciler.runtime.verification.triage import Triage

log = logging.getLogger("reconciler.runtime")
ALERTED_SEVERITIES = ("critical", "major")
DEFAULT_EXTRA_LOOKBACK_MS = 2 * 3600_000


def _iso(epoch_ms: int) -> str:
    return from_ms(epoch_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
        self.checks = 0
        self.last: VerificationReport | None = None

    async def check_once(self) -> VerificationReport:
        """Match the last `lookback_ms` and alert each new critical or major finding."""
        now = self._now_ms()
        start = now - self.lookback_ms
        margin = self.plan.margin_ms
        cdrs = [c for c in self.store.cdrs(None, start - margin, now) if c.collector in self.plan.collectors]
        recordings = await self.platform.recordings(from_ms(start - margin), from_ms(now + margin))
        sources = [
            SourceStatus(c.name, not c.down, 0, "collector down" if c.down else "polling") for c in self.collectors
        ]
        report = build_report(
            self.plan,
            cdrs,
            recordings,
            period=(start, now),
            now_ms=now,
            triage=self.triage(),
            sources=sources,
            labels=(_iso(start), _iso(now)),
        )
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
                    at=_iso(now),
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
