"""Fetch the market snapshot for a starting call: bounded in time, breaker-guarded, coalesced.

`SnapshotFetcher.fetch(instruments)` always returns a `FetchResult` (never raises for a feed
problem): `ok` with the snapshot, or `data_fetch_failed` with a reason, which the injector
records as `{"market_snapshot": null, "status": "data_fetch_failed"}` (`FetchResult.attachment`).

- Hard timeout: the adapter call runs under `asyncio.timeout(timeoutMs / 1000)`. Each waiter
  also stops waiting a few milliseconds after that deadline (`WAITER_GRACE_S`), so even an
  adapter that ignored cancellation could not hold a call up.
- Circuit breaker: while it is open a call fails at once ("breaker open") with no I/O and no
  task; in half-open one fetch is the probe and the others fail fast.
- Coalescing (single flight): a call joins a fetch already in flight for the same feed and the
  same instrument set if that fetch started at most `coalesce_window` seconds ago (the
  manifest's `coalesceWindowMs`, default 10 ms: at 1,000 call starts a second one feed request
  serves about ten calls, and nobody gets prices fetched more than the window before their
  call started); `coalesce_window=None` joins any fetch in flight. Joining never waits for a
  batch to form. All waiters get the same outcome (each its own copy of the snapshot); a
  failure is returned to all of them. The shared fetch runs as its own task, so a waiter that
  is cancelled does not cancel it for the others.

Time: the coalescing window and `latency_s` use `clock` (injectable); the timeouts use the event
loop's clock, as asyncio does.

Counters (`counters`, for metrics): requests (fetch() calls), fetches (adapter calls started),
coalesced (calls that joined another's fetch), fallbacks (calls answered data_fetch_failed),
failures by reason category (one per failed fetch or breaker rejection: "timeout",
"breaker open", "http status", "bad response", "missing data", "provider error", "transport",
"auth", "internal").

Called by: the runtime's call-start hook (the snapshot injector), once per starting call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from reconciler.runtime.snapshot.breaker import CircuitBreaker, Permit
from reconciler.runtime.snapshot.feedconfig import (
    DEFAULT_COALESCE_WINDOW,
    FeedError,
    FeedSettings,
    InstrumentKey,
    InstrumentRef,
    Resolve,
    Snapshot,
)
from reconciler.runtime.snapshot.feeds import FeedAdapter, build_adapter

log = logging.getLogger(__name__)

WAITER_GRACE_S = 0.005
"""How long past the hard timeout a waiter keeps waiting for the shared fetch to report."""

Status = Literal["ok", "data_fetch_failed"]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one call gets: a snapshot and "ok", or None and "data_fetch_failed" with a reason."""

    snapshot: Snapshot | None
    status: Status
    reason: str
    latency_s: float
    coalesced: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def attachment(self) -> dict[str, object]:
        """`{"market_snapshot": ..., "status": ...}` as attached to the recording."""
        return {"market_snapshot": self.snapshot, "status": self.status}


@dataclass(slots=True)
class FetcherCounters:
    """Monotonic counters for metrics."""

    requests: int = 0
    fetches: int = 0
    coalesced: int = 0
    fallbacks: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "fetches": self.fetches,
            "coalesced": self.coalesced,
            "fallbacks": self.fallbacks,
            "failures": dict(self.failures),
        }


@dataclass(frozen=True, slots=True)
class _Outcome:
    snapshot: Snapshot | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Flight:
    task: asyncio.Task[_Outcome]
    started: float
    deadline: float
    """Event-loop time after which waiters give up."""


class SnapshotFetcher:
    """One feed's call-start snapshots. Use from one event loop."""

    def __init__(
        self,
        feed_settings: FeedSettings,
        adapter: FeedAdapter,
        breaker: CircuitBreaker | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        coalesce_window: float | None = DEFAULT_COALESCE_WINDOW,
    ) -> None:
        self.settings = feed_settings
        self.adapter = adapter
        self.breaker = breaker
        self._clock = clock
        self._window = coalesce_window
        self._timeout = feed_settings.timeout_s
        self._inflight: dict[InstrumentKey, _Flight] = {}
        self._default_key = self.key(feed_settings.instruments)
        self.counters = FetcherCounters()

    def __repr__(self) -> str:
        return f"SnapshotFetcher(feed={self.settings.name!r}, provider={self.settings.provider!r})"

    @staticmethod
    def key(instruments: Sequence[InstrumentRef]) -> InstrumentKey:
        """The coalescing key of an instrument set: order and duplicates do not matter."""
        return tuple(sorted(set(instruments), key=lambda i: (i.symbol, i.field, i.as_)))

    async def fetch(self, instruments_key: Sequence[InstrumentRef] | None = None) -> FetchResult:
        """The snapshot of `instruments_key` (default: the feed's instruments), within the
        feed's timeout. Never raises for a feed problem; `ValueError` for an empty set."""
        start = self._clock()
        self.counters.requests += 1
        key = self._default_key if instruments_key is None else self.key(instruments_key)
        if not key:
            raise ValueError("no instruments to fetch")
        flight = self._inflight.get(key)
        if flight is not None and (self._window is None or start - flight.started <= self._window):
            self.counters.coalesced += 1
            return await self._wait(flight, start, coalesced=True)
        permit: Permit | None = None
        if self.breaker is not None:
            permit = self.breaker.allow()
            if permit is None:
                self.counters.failures["breaker open"] += 1
                self.counters.fallbacks += 1
                return FetchResult(None, "data_fetch_failed", "breaker open", self._clock() - start)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run(key, permit), name=f"market-snapshot:{self.settings.name}")
        flight = _Flight(task, start, loop.time() + self._timeout + WAITER_GRACE_S)
        self._inflight[key] = flight
        task.add_done_callback(lambda _: self._land(key, flight))
        return await self._wait(flight, start, coalesced=False)

    async def aclose(self) -> None:
        """Cancel fetches in flight and close the feed's client."""
        for flight in list(self._inflight.values()):
            flight.task.cancel()
        self._inflight.clear()
        await self.adapter.aclose()

    def _land(self, key: InstrumentKey, flight: _Flight) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    async def _wait(self, flight: _Flight, start: float, *, coalesced: bool) -> FetchResult:
        try:
            async with asyncio.timeout_at(flight.deadline):
                outcome = await asyncio.shield(flight.task)
        except TimeoutError:
            outcome = _Outcome(None, f"timeout after {self._timeout * 1000:.0f} ms")
        except asyncio.CancelledError:
            if flight.task.cancelled() and not _current_task_cancelling():
                outcome = _Outcome(None, "fetch cancelled (runtime shutting down)")
            else:
                raise
        latency = self._clock() - start
        if outcome.snapshot is None:
            self.counters.fallbacks += 1
            return FetchResult(None, "data_fetch_failed", outcome.reason, latency, coalesced)
        return FetchResult(dict(outcome.snapshot), "ok", "", latency, coalesced)

    async def _run(self, key: InstrumentKey, permit: Permit | None) -> _Outcome:
        """The one shared fetch: adapter under the hard timeout, outcome to the breaker."""
        self.counters.fetches += 1
        ok = False
        category, reason = "internal", "fetch did not finish"
        try:
            async with asyncio.timeout(self._timeout):
                snapshot = await self.adapter.fetch(key)
            ok = True
            return _Outcome(snapshot)
        except TimeoutError:
            category, reason = "timeout", f"timeout after {self._timeout * 1000:.0f} ms"
        except FeedError as exc:
            category, reason = exc.category, exc.message
        except Exception as exc:  # a bug in an adapter must not reach a call
            category, reason = "internal", f"unexpected {type(exc).__name__} in the {self.settings.provider} adapter"
            log.error("market-data feed %s: %s", self.settings.name, reason, exc_info=True)
        finally:
            if self.breaker is not None and permit is not None:
                self.breaker.record(permit, ok=ok)
        self.counters.failures[category] += 1
        log.warning("market-data fetch from feed %s failed: %s", self.settings.name, reason)
        return _Outcome(None, reason)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def open_fetcher(
    settings: FeedSettings,
    resolve: Resolve,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SnapshotFetcher:
    """Adapter, breaker and fetcher for one feed, as the manifest configures it (startup only:
    raises `FeedConfigError` for an unusable configuration)."""
    adapter = build_adapter(settings, resolve, transport=transport, clock=clock)
    breaker = None
    if settings.breaker_threshold is not None and settings.breaker_reset_s is not None:
        breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_reset_s, clock=clock, name=settings.name)
    else:
        log.warning(
            "market-data feed %s has no circuit breaker: a failing feed is retried on every call", settings.name
        )
    return SnapshotFetcher(settings, adapter, breaker, clock, coalesce_window=settings.coalesce_window_s)
