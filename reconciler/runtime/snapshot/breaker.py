"""The circuit breaker in front of a market-data feed: a failing feed costs calls nothing.

States:

    closed  ──(failure_threshold consecutive failures)──▶  open
    open    ──(reset_after elapsed; the next allow())──▶  half-open, one probe admitted
    half-open: other callers are rejected at once while the probe is in flight
    probe succeeds ──▶ closed (failure count 0)     probe fails ──▶ open again (timer restarts)

A success while closed resets the consecutive-failure count. `allow()` returns a `Permit` (or
None: rejected, no I/O may be done); every permit must be settled with `record(permit, ok=...)`.
A permit carries the generation it was issued in, so a slow fetch that started before the
breaker opened cannot close it, or count twice, when it finishes late.

Written here rather than taken from a library: the well-known Python breakers (pybreaker,
circuitbreaker) are synchronous decorators or unmaintained, and this is a small state machine.
All methods are synchronous and never await, so they are atomic within one asyncio event loop
(the runtime's); the breaker is not meant to be shared across threads. Time comes from
`clock` (monotonic seconds; injectable, e.g. the event loop's clock).

Exposed for metrics: `state`, `consecutive_failures`, `opened_total`, `rejected_total`,
`probes_total`.

Called by: reconciler.runtime.snapshot.fetcher.SnapshotFetcher (one breaker per feed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to do one fetch. `probe` is True for the single half-open trial."""

    generation: int
    probe: bool = False


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures; one probe after `reset_after` seconds."""

    def __init__(
        self,
        failure_threshold: int,
        reset_after: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_after <= 0:
            raise ValueError("reset_after must be positive")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self.name = name
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.consecutive_failures = 0
        self.opened_total = 0
        """Times the breaker went to open (from closed or from a failed probe)."""
        self.rejected_total = 0
        """Callers turned away without I/O."""
        self.probes_total = 0
        """Half-open probes admitted."""

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value}, failures={self.consecutive_failures})"

    @property
    def state(self) -> BreakerState:
        """The state as a caller would meet it now: open past `reset_after` reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def probe_in_flight(self) -> bool:
        return self._probe_in_flight

    def allow(self) -> Permit | None:
        """A permit to fetch, or None (rejected: fail fast, do no I/O)."""
        state = self._state
        if state is BreakerState.CLOSED:
            return Permit(self._generation)
        if state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset_after:
                self.rejected_total += 1
                return None
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
        if self._probe_in_flight:
            self.rejected_total += 1
            return None
        self._probe_in_flight = True
        self.probes_total += 1
        return Permit(self._generation, probe=True)

    def record(self, permit: Permit, *, ok: bool) -> None:
        """Settle `permit` with its fetch's outcome. Stale permits (issued before the breaker last
        opened) are ignored."""
        if permit.generation != self._generation:
            return
        if permit.probe:
            self._probe_in_flight = False
            if self._state is not BreakerState.HALF_OPEN:
                return
            if ok:
                self._close()
            else:
                self._open("the probe failed")
            return
        if self._state is not BreakerState.CLOSED:
            return
        if ok:
            self.consecutive_failures = 0
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.failure_threshold:
            self._open(f"{self.consecutive_failures} consecutive failures")

    def _open(self, why: str) -> None:
        self._state = BreakerState.OPEN
        self._generation += 1
        self._opened_at = self._clock()
        self.opened_total += 1
        log.warning("market-data breaker %s opened (%s); retrying in %.3gs", self.name, why, self.reset_after)

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._generation += 1
        self.consecutive_failures = 0
        log.info("market-data breaker %s closed after a successful probe", self.name)
