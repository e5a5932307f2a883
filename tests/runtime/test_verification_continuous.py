"""The continuous capture verifier (reconciler.runtime.verification.continuous) on a real
CursorStore in tmp_path, a fake platform and a controllable clock: which findings alert (critical
and major, once, unless triaged), the grace, and `run` until its stop event. No network; no sleep
is used to synchronise (the clock is a function the test moves)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from reconciler.manifest.kinds.runtime import CollectorTopologySpec
from reconciler.runtime.alerts import Alert
from reconciler.runtime.verification.batch import TopologyPlan
from reconciler.runtime.verification.continuous import ContinuousVerifier
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import Cdr, Recording, to_ms
from reconciler.runtime.verification.platform import PlatformRecordings
from reconciler.runtime.verification.triage import Triage, TriageTag

T0 = to_ms(dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC))
CALL_MS = 60_000
GRACE_MS = 300_000
GRACE_OVER = T0 + CALL_MS + GRACE_MS  # the first instant a call at T0 without recording is not_recorded
TIMEOUT_S = 5.0

SPEC = CollectorTopologySpec.model_validate(
    {
        "dataSource": {"type": "bt-trading-enterprise", "switch": "ldn-iptrade-01"},
        "collectors": [
            {
                "name": "col-a",
                "endpoints": {"primary": "wss://ts-a1.example:8443/wba"},
                "token": "env:TRADESENSE_TOKEN_A",
                "pollInterval": "1s",
                "traders": [
                    {"id": "T-1", "user": "ann@acme.example", "turret": "TUR-1"},
                    {"id": "T-2", "user": "bob@acme.example", "turret": "TUR-2"},
                ],
            }
        ],
        "matching": {"startTolerance": "2s", "durationTolerance": "1s", "lateRecordingGrace": "5m"},
        "target": "99.9%",
    }
)
PLAN = TopologyPlan.from_spec("bt-trading-london", SPEC, {"gas-desk": ["ann@acme.example"]})


def cdr(cdr_id: str, trader: str = "T-1", start_ms: int = T0, duration_ms: int = CALL_MS, **overrides: Any) -> Cdr:
    fields: dict[str, Any] = {
        "cdr_id": cdr_id,
        "collector": "col-a",
        "trader_id": trader,
        "turret": f"TUR-{trader[2:]}",
        "line": "L1",
        "direction": "in",
        "start_ms": start_ms,
        "duration_ms": duration_ms,
    }
    fields.update(overrides)
    return Cdr(**fields)


def rec(recording_id: str, trader: str = "T-1", start_ms: int = T0, duration_ms: int = CALL_MS) -> Recording:
    return Recording(recording_id, f"conv-{recording_id}", trader, start_ms, duration_ms)


@dataclass
class Clock:
    now: int

    def __call__(self) -> int:
        return self.now


@dataclass
class FakePlatform:
    """`recordings` returns the recordings that started in [start, end); remembers the calls."""

    items: list[Recording] = field(default_factory=list)
    fail_first: int = 0
    calls: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    forgotten: list[dt.datetime] = field(default_factory=list)

    async def recordings(self, start: dt.datetime, end: dt.datetime) -> list[Recording]:
        self.calls.append((start, end))
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("platform unavailable")
        low, high = to_ms(start), to_ms(end)
        return [r for r in self.items if low <= r.start_ms < high]

    def forget_before(self, moment: dt.datetime) -> None:
        self.forgotten.append(moment)


@dataclass
class Rig:
    verifier: ContinuousVerifier
    store: CursorStore
    platform: FakePlatform
    clock: Clock
    alerts: list[Alert]
    triage: dict[str, Triage]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = CursorStore(tmp_path / "runtime.db")
    platform = FakePlatform()
    clock = Clock(GRACE_OVER)
    alerts: list[Alert] = []
    triage: dict[str, Triage] = {}
    verifier = ContinuousVerifier(
        PLAN,
        [],
        store,
        cast(PlatformRecordings, platform),
        lambda: triage,
        alerts.append,
        interval_s=0.01,
        now_ms=clock,
    )
    yield Rig(verifier, store, platform, clock, alerts, triage)
    store.close()


def setup(r: Rig, cdrs: Sequence[Cdr], recordings: Sequence[Recording], triage: Mapping[str, Triage]) -> None:
    if cdrs:
        r.store.save_batch("col-a", "primary", list(cdrs), cursor="cur-1", high_water_ms=T0 + CALL_MS)
    r.platform.items = list(recordings)
    r.triage.update(triage)


def check(r: Rig) -> None:
    asyncio.run(asyncio.wait_for(r.verifier.check_once(), TIMEOUT_S))


def tag(key: str, chosen: TriageTag) -> dict[str, Triage]:
    return {key: Triage(key=key, tag=chosen, note="desk confirmed", reviewer="alice", at="2026-11-21T09:03:00.000Z")}


def summary(alerts: list[Alert]) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.severity, a.key) for a in alerts]


@pytest.mark.parametrize(
    ("cdrs", "recordings", "triage", "expected"),
    [
        pytest.param([cdr("c1")], [rec("r1")], {}, [], id="verified-no-alert"),
        pytest.param(
            [cdr("c1")], [], {}, [("capture_gap", "critical", "not_recorded:c1")], id="not-recorded-critical-alert"
        ),
        pytest.param(
            [cdr("c1")],
            [rec("r1", duration_ms=30_000)],
            {},
            [("capture_gap", "major", "partial:c1")],
            id="partial-major-alert",
        ),
        pytest.param([], [rec("r1")], {}, [], id="recording-without-cdr-minor-no-alert"),
        pytest.param(
            [cdr("c1")],
            [],
            tag("not_recorded:c1", TriageTag.FALSE_POSITIVE),
            [],
            id="gap-triaged-false-positive-before-the-check-no-alert",
        ),
        pytest.param(
            [cdr("c1")],
            [],
            tag("not_recorded:c1", TriageTag.MISSING_RECORDING),
            [],
            id="gap-triaged-missing-recording-before-the-check-no-alert",
        ),
        pytest.param(
            [cdr("c1")],
            [rec("r1", duration_ms=30_000)],
            tag("partial:c1", TriageTag.TEST_CALL),
            [],
            id="partial-triaged-before-the-check-no-alert",
        ),
        pytest.param(
            [cdr("c1", line="L8", start_ms=T0), cdr("c2", trader="T-2", start_ms=T0 + 5_000)],
            [rec("r2", trader="T-2", start_ms=T0 + 5_000, duration_ms=10_000)],
            {},
            [("capture_gap", "critical", "not_recorded:c1"), ("capture_gap", "major", "partial:c2")],
            id="two-findings-two-alerts-critical-first",
        ),
        pytest.param([cdr("c1", collector="col-z")], [], {}, [], id="cdr-of-a-collector-not-in-the-plan-no-alert"),
        pytest.param([cdr("old", start_ms=T0 - 3 * 3600_000)], [], {}, [], id="cdr-older-than-the-lookback-no-alert"),
    ],
)
def test_which_findings_alert(
    rig: Rig, cdrs: list[Cdr], recordings: list[Recording], triage: dict[str, Triage], expected: list[Any]
) -> None:
    for collector in sorted({c.collector for c in cdrs}):
        rig.store.save_batch(collector, "primary", [c for c in cdrs if c.collector == collector], "cur-1", T0)
    setup(rig, [], recordings, triage)
    check(rig)
    assert summary(rig.alerts) == expected
    assert rig.verifier.checks == 1


def test_a_gap_alerts_once_after_the_grace(rig: Rig) -> None:
    setup(rig, [cdr("c1")], [], {})

    rig.clock.now = GRACE_OVER - 1
    check(rig)
    assert rig.alerts == [], "within the grace the call is pending"
    last = rig.verifier.last
    assert last is not None
    assert last.total.counts.get("pending") == 1

    rig.clock.now = GRACE_OVER
    check(rig)
    assert summary(rig.alerts) == [("capture_gap", "critical", "not_recorded:c1")]
    alert = rig.alerts[0]
    assert alert.at == "2026-11-21T09:06:00.000Z"
    assert "T-1" in alert.summary and "not recorded" in alert.summary
    assert alert.detail["cdrId"] == "c1"
    assert alert.detail["collector"] == "col-a"
    assert alert.detail["desks"] == "gas-desk"
    assert alert.detail["topology"] == "bt-trading-london"
    assert "recon triage set not_recorded:c1" in alert.detail["triage"]

    rig.clock.now = GRACE_OVER + 60_000
    check(rig)
    assert len(rig.alerts) == 1, "the same finding is not alerted twice"
    assert rig.verifier.checks == 3


def test_the_platform_is_asked_only_about_the_open_calls(rig: Rig) -> None:
    """The window starts at the earliest call still open; settled calls (and a window with none
    open) cost no platform request, and a settled call's recording cannot pair again."""
    lookback = GRACE_MS + 2 * 3600_000
    margin = PLAN.margin_ms
    check(rig)
    assert rig.platform.calls == [], "no open call: the platform is not asked"
    setup(rig, [cdr("c1"), cdr("c2", trader="T-2")], [rec("r1")], {})
    check(rig)
    ((start, end),) = rig.platform.calls
    assert (to_ms(start), to_ms(end)) == (T0 - margin, GRACE_OVER + margin)
    assert summary(rig.alerts) == [("capture_gap", "critical", "not_recorded:c2")]
    assert set(rig.verifier.settled) == {"c1", "c2"} and set(rig.verifier.claimed) == {"r1"}
    assert rig.verifier.totals == {"verified": 1, "not_recorded": 1}
    check(rig)
    assert len(rig.platform.calls) == 1, "both calls settled: not asked again"
    assert [to_ms(m) for m in rig.platform.forgotten][-1] == GRACE_OVER - lookback - margin


def test_a_recording_of_a_settled_call_does_not_hide_a_later_gap(rig: Rig) -> None:
    setup(rig, [cdr("c1")], [rec("r1")], {})
    check(rig)
    # c2 of the same trader started 1 s before c1 and is reported later, with no recording of its own.
    setup(rig, [cdr("c1"), cdr("c2", start_ms=T0 - 1_000)], [rec("r1")], {})
    check(rig)
    assert summary(rig.alerts) == [("capture_gap", "critical", "not_recorded:c2")]


def test_run_checks_until_stopped_by_the_alert(rig: Rig) -> None:
    setup(rig, [cdr("c1")], [], {})

    async def scenario() -> None:
        stop = asyncio.Event()

        def alert(a: Alert) -> None:
            rig.alerts.append(a)
            stop.set()

        rig.verifier.alert = alert
        await asyncio.wait_for(rig.verifier.run(stop), TIMEOUT_S)
        assert stop.is_set()

    asyncio.run(scenario())
    assert rig.verifier.checks >= 1
    assert summary(rig.alerts) == [("capture_gap", "critical", "not_recorded:c1")]


@pytest.mark.parametrize(
    ("fail_first", "checks"),
    [
        pytest.param(0, 3, id="three-good-checks"),
        pytest.param(2, 1, id="failed-checks-are-logged-and-the-loop-goes-on"),
    ],
)
def test_run_stops_after_the_check_that_sets_stop(rig: Rig, fail_first: int, checks: int) -> None:
    rig.platform.fail_first = fail_first
    setup(rig, [cdr("open", start_ms=GRACE_OVER - 10_000)], [], {})  # within its grace: asked every check
    calls_wanted = 3

    async def scenario() -> None:
        stop = asyncio.Event()
        original = rig.platform.recordings

        async def counted(start: dt.datetime, end: dt.datetime) -> list[Recording]:
            if len(rig.platform.calls) + 1 >= calls_wanted:
                stop.set()
            return await original(start, end)

        rig.platform.recordings = counted  # type: ignore[method-assign]
        await asyncio.wait_for(rig.verifier.run(stop), TIMEOUT_S)

    asyncio.run(scenario())
    assert len(rig.platform.calls) == calls_wanted
    assert rig.verifier.checks == checks
