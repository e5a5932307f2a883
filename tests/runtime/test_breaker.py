"""Circuit breaker transitions, table-driven, on an injected clock (no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reconciler.runtime.snapshot.breaker import BreakerState, CircuitBreaker, Permit

THRESHOLD = 3
RESET = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    clock: Clock
    breaker: CircuitBreaker
    probe: Permit | None = None

    def step(self, op: str) -> None:
        name, _, arg = op.partition(":")
        if name in ("ok", "fail"):
            permit = self.breaker.allow()
            assert permit is not None and not permit.probe, f"{op}: expected a closed-state permit"
            self.breaker.record(permit, ok=name == "ok")
        elif name == "reject":
            assert self.breaker.allow() is None, f"{op}: expected a fast rejection"
        elif name == "wait":
            self.clock.now += float(arg)
        elif name == "probe":
            self.probe = self.breaker.allow()
            assert self.probe is not None and self.probe.probe, f"{op}: expected the half-open probe"
        elif name in ("probe_ok", "probe_fail"):
            assert self.probe is not None
            self.breaker.record(self.probe, ok=name == "probe_ok")
            self.probe = None
        else:  # pragma: no cover - a typo in the table
            raise AssertionError(op)


FAILS = ["fail"] * THRESHOLD


@pytest.mark.parametrize(
    ("ops", "state", "failures", "opened", "rejected"),
    [
        pytest.param(["fail"] * (THRESHOLD - 1), "closed", THRESHOLD - 1, 0, 0, id="closed-below-threshold"),
        pytest.param(FAILS, "open", THRESHOLD, 1, 0, id="closed-to-open-at-threshold"),
        pytest.param([*FAILS, "reject", "reject"], "open", THRESHOLD, 1, 2, id="open-rejects-fast"),
        pytest.param([*FAILS, f"wait:{RESET - 0.001}", "reject"], "open", THRESHOLD, 1, 1, id="open-until-reset-after"),
        pytest.param([*FAILS, f"wait:{RESET}"], "half_open", THRESHOLD, 1, 0, id="reads-half-open-after-reset"),
        pytest.param(
            [*FAILS, f"wait:{RESET}", "probe", "reject", "reject"],
            "half_open",
            THRESHOLD,
            1,
            2,
            id="half-open-single-probe",
        ),
        pytest.param([*FAILS, f"wait:{RESET}", "probe", "probe_ok"], "closed", 0, 1, 0, id="probe-success-closes"),
        pytest.param(
            [*FAILS, f"wait:{RESET}", "probe", "probe_ok", "fail", "fail", "ok"],
            "closed",
            0,
            1,
            0,
            id="closed-again-works",
        ),
        pytest.param(
            [*FAILS, f"wait:{RESET}", "probe", "probe_fail"], "open", THRESHOLD, 2, 0, id="probe-failure-reopens"
        ),
        pytest.param(
            [*FAILS, f"wait:{RESET}", "probe", "probe_fail", f"wait:{RESET / 2}", "reject"],
            "open",
            THRESHOLD,
            2,
            1,
            id="reopen-restarts-the-timer",
        ),
        pytest.param(
            [*FAILS, f"wait:{RESET}", "probe", "probe_fail", f"wait:{RESET}", "probe", "probe_ok"],
            "closed",
            0,
            2,
            0,
            id="second-probe-after-reopen",
        ),
        pytest.param(["fail", "fail", "ok", "fail", "fail"], "closed", 2, 0, 0, id="success-resets-failure-count"),
    ],
)
def test_transitions(ops: list[str], state: str, failures: int, opened: int, rejected: int) -> None:
    clock = Clock()
    rig = Rig(clock, CircuitBreaker(THRESHOLD, RESET, clock=clock, name="fx"))
    for op in ops:
        rig.step(op)
    assert rig.breaker.state == BreakerState(state)
    assert rig.breaker.consecutive_failures == failures
    assert rig.breaker.opened_total == opened
    assert rig.breaker.rejected_total == rejected


def test_late_results_of_fetches_started_before_the_breaker_opened_are_ignored() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, RESET, clock=clock)
    slow_ok = breaker.allow()
    slow_fail = breaker.allow()
    for _ in range(2):
        permit = breaker.allow()
        assert permit is not None
        breaker.record(permit, ok=False)
    assert breaker.state is BreakerState.OPEN
    assert slow_ok is not None and slow_fail is not None
    breaker.record(slow_ok, ok=True)  # must not close an open breaker
    breaker.record(slow_fail, ok=False)  # must not open it twice
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_total == 1
    clock.now += RESET
    probe = breaker.allow()
    assert probe is not None and probe.probe
    breaker.record(slow_ok, ok=True)  # nor stand in for the probe
    assert breaker.allow() is None
    breaker.record(probe, ok=True)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0)], ids=["threshold-0", "reset-0"])
def test_bad_settings_are_refused(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, reset)


def test_threshold_one_opens_on_the_first_failure_and_the_probe_counter_counts() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, RESET, clock=clock)
    permit = breaker.allow()
    assert permit is not None
    breaker.record(permit, ok=False)
    assert breaker.state is BreakerState.OPEN
    clock.now += RESET
    assert breaker.allow() is not None
    assert breaker.probes_total == 1
    assert breaker.probe_in_flight
