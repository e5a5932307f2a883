"""SnapshotFetcher: hard timeout, breaker fast-fail, coalescing, shared failures, counters.

Feeds are in-process (httpx.MockTransport); synchronisation is by asyncio Events and the order
in which asyncio runs tasks, never by sleeping. Only the timeout test reads the real clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import pytest

from reconciler.runtime.snapshot.breaker import BreakerState, CircuitBreaker
from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef, Snapshot
from reconciler.runtime.snapshot.feeds import FeedAdapter, build_adapter
from reconciler.runtime.snapshot.fetcher import FetchResult, SnapshotFetcher, open_fetcher

URL = "https://feed.example/v1/snapshot"
EURUSD = InstrumentRef("EUR/USD", "mid", "eurusd_spot")
GAS = InstrumentRef("Natural_Gas_Hub", "price_usd", "commodity")
BODY = {
    "timestamp": "2026-10-27T14:30:00.123Z",
    "data": {"EUR/USD": {"mid": 1.089}, "Natural_Gas_Hub": {"price_usd": 2.45}},
}
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Feed:
    """Counts requests; `gate` (if set) holds every answer until it is set; `entered` fires
    when a request arrives."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = BODY if body is None else body
        self.gate: asyncio.Event | None = None
        self.entered: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return httpx.Response(self.status, json=self.body)


def fetcher(
    handler: Handler,
    *,
    timeout_s: float = 0.2,
    breaker: CircuitBreaker | None = None,
    clock: Callable[[], float] | None = None,
    window: float | None = 0.001,
    instruments: tuple[InstrumentRef, ...] = (EURUSD, GAS),
) -> SnapshotFetcher:
    settings = FeedSettings("fx", "generic-rest", URL, instruments, timeout_s=timeout_s)
    adapter = build_adapter(settings, {}.__getitem__, transport=httpx.MockTransport(handler))
    return SnapshotFetcher(settings, adapter, breaker, clock or Clock(), coalesce_window=window)


def run(fetch: SnapshotFetcher, scenario: Callable[[], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        try:
            return await scenario()
        finally:
            await fetch.aclose()

    return asyncio.run(go())


EXPECTED = {
    "timestamp_utc": "2026-10-27T14:30:00.123Z",
    "source_provider": "generic-rest",
    "eurusd_spot": 1.089,
    "commodity": 2.45,
}


def test_ok_result_and_attachment() -> None:
    fetch = fetcher(Feed())
    result: FetchResult = run(fetch, fetch.fetch)
    assert result.ok
    assert result.snapshot == EXPECTED
    assert result.attachment == {"market_snapshot": EXPECTED, "status": "ok"}
    assert fetch.counters.as_dict() == {"requests": 1, "fetches": 1, "coalesced": 0, "fallbacks": 0, "failures": {}}


def test_timeout_fails_within_the_budget() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")

    breaker = CircuitBreaker(5, 30.0)
    fetch = fetcher(hang, timeout_s=0.02, breaker=breaker, clock=time.monotonic)

    started = time.monotonic()
    result: FetchResult = run(fetch, fetch.fetch)
    elapsed = time.monotonic() - started

    assert result.status == "data_fetch_failed"
    assert result.snapshot is None
    assert result.attachment == {"market_snapshot": None, "status": "data_fetch_failed"}
    assert "timeout after 20 ms" in result.reason
    assert elapsed < 0.02 + 0.1
    assert 0.015 <= result.latency_s < 0.02 + 0.1
    assert fetch.counters.failures == {"timeout": 1}
    assert breaker.consecutive_failures == 1


class Stubborn(FeedAdapter):
    """An adapter that swallows the first cancellation (a bug the waiter deadline must survive)."""

    async def fetch(self, instruments: Sequence[InstrumentRef]) -> Snapshot:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_waiters_give_up_even_if_the_adapter_ignores_cancellation() -> None:
    settings = FeedSettings("fx", "generic-rest", URL, (EURUSD,), timeout_s=0.02)
    fetch = SnapshotFetcher(settings, Stubborn(settings, httpx.AsyncClient()), None)
    started = time.monotonic()
    result: FetchResult = run(fetch, fetch.fetch)
    assert result.status == "data_fetch_failed"
    assert "timeout" in result.reason
    assert time.monotonic() - started < 0.02 + 0.1


def test_breaker_open_fails_at_once_without_calling_the_feed() -> None:
    feed = Feed(status=503)
    clock = Clock()
    breaker = CircuitBreaker(2, 30.0, clock=clock)
    fetch = fetcher(feed, breaker=breaker, clock=clock)

    async def scenario() -> list[FetchResult]:
        return [await fetch.fetch() for _ in range(5)]

    results = run(fetch, scenario)
    assert len(feed.requests) == 2
    assert [r.reason for r in results] == ["the feed's response: HTTP 503"] * 2 + ["breaker open"] * 3
    assert all(r.status == "data_fetch_failed" for r in results)
    assert results[-1].latency_s == 0.0  # the injected clock did not move: no I/O, no waiting
    assert breaker.state is BreakerState.OPEN
    assert breaker.rejected_total == 3
    assert fetch.counters.failures == {"http status": 2, "breaker open": 3}
    assert fetch.counters.fallbacks == 5


def test_half_open_probe_success_closes_and_fetches_resume() -> None:
    feed = Feed(status=503)
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    fetch = fetcher(feed, breaker=breaker, clock=clock)

    async def scenario() -> list[str]:
        statuses = [(await fetch.fetch()).reason]
        feed.status = 200
        statuses.append((await fetch.fetch()).reason)
        clock.now += 30.0
        statuses.append((await fetch.fetch()).status)
        statuses.append((await fetch.fetch()).status)
        return statuses

    assert run(fetch, scenario) == ["the feed's response: HTTP 503", "breaker open", "ok", "ok"]
    assert breaker.state is BreakerState.CLOSED
    assert len(feed.requests) == 3


def test_100_concurrent_calls_share_one_fetch() -> None:
    feed = Feed()
    fetch = fetcher(feed)

    async def scenario() -> list[FetchResult]:
        return list(await asyncio.gather(*(fetch.fetch() for _ in range(100))))

    results = run(fetch, scenario)
    assert len(feed.requests) == 1
    assert all(r.snapshot == EXPECTED for r in results)
    assert sum(r.coalesced for r in results) == 99
    results[0].snapshot["eurusd_spot"] = 0.0  # type: ignore[index]
    assert results[1].snapshot == EXPECTED  # each caller has its own copy
    assert fetch.counters.as_dict() == {"requests": 100, "fetches": 1, "coalesced": 99, "fallbacks": 0, "failures": {}}


def test_instrument_order_and_duplicates_do_not_split_a_flight() -> None:
    feed = Feed()
    fetch = fetcher(feed)

    async def scenario() -> list[FetchResult]:
        return list(await asyncio.gather(fetch.fetch([EURUSD, GAS]), fetch.fetch([GAS, EURUSD, GAS]), fetch.fetch()))

    assert all(r.ok for r in run(fetch, scenario))
    assert len(feed.requests) == 1


def test_different_instrument_sets_fetch_separately() -> None:
    feed = Feed()
    fetch = fetcher(feed)

    async def scenario() -> list[FetchResult]:
        both = [fetch.fetch([EURUSD, GAS]) for _ in range(50)]
        one = [fetch.fetch([EURUSD]) for _ in range(50)]
        return list(await asyncio.gather(*both, *one))

    results = run(fetch, scenario)
    assert len(feed.requests) == 2
    assert sorted(r.url.params["symbols"] for r in feed.requests) == ["EUR/USD", "EUR/USD,Natural_Gas_Hub"]
    assert all(r.snapshot == EXPECTED for r in results[:50])
    assert all(r.snapshot is not None and "commodity" not in r.snapshot for r in results[50:])
    assert fetch.counters.fetches == 2
    assert fetch.counters.coalesced == 98


def test_a_failure_is_returned_to_every_coalesced_waiter_and_counted_once() -> None:
    feed = Feed(status=200, body={"timestamp": "2026-10-27T14:30:00Z", "data": {}})
    clock = Clock()
    breaker = CircuitBreaker(3, 30.0, clock=clock)
    fetch = fetcher(feed, breaker=breaker, clock=clock)

    async def scenario() -> list[FetchResult]:
        return list(await asyncio.gather(*(fetch.fetch() for _ in range(10))))

    results = run(fetch, scenario)
    assert len(feed.requests) == 1
    assert {r.reason for r in results} == {"no mid for EUR/USD"}
    assert all(r.status == "data_fetch_failed" for r in results)
    assert fetch.counters.failures == {"missing data": 1}
    assert fetch.counters.fallbacks == 10
    assert breaker.consecutive_failures == 1


@pytest.mark.parametrize(("window", "fetches"), [(0.001, 2), (None, 1)], ids=["outside-1ms-window", "any-in-flight"])
def test_coalescing_window(window: float | None, fetches: int) -> None:
    feed = Feed()
    clock = Clock()
    fetch = fetcher(feed, clock=clock, window=window)

    async def scenario() -> list[FetchResult]:
        feed.gate, feed.entered = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(fetch.fetch())
        await feed.entered.wait()
        clock.now += 0.002  # this call starts 2 ms after the first fetch did
        second = asyncio.create_task(fetch.fetch())
        # asyncio runs ready callbacks in FIFO order: the second call's first step (where it
        # joins or starts a flight) runs before the gate's waiter wakes up.
        feed.gate.set()
        return [await first, await second]

    results = run(fetch, scenario)
    assert all(r.ok for r in results)
    assert len(feed.requests) == fetches


@pytest.mark.parametrize(
    ("window_ms", "later_ms", "fetches"),
    [(10, 8, 1), (10, 12, 2), (1, 2, 2), (50, 40, 1)],
    ids=["default-10ms-joins-a-call-8ms-later", "default-10ms-not-12ms-later", "1ms-not-2ms-later", "50ms-joins-40ms"],
)
def test_the_manifest_window_reaches_the_fetcher(window_ms: int, later_ms: int, fetches: int) -> None:
    """open_fetcher (what the runtime uses) takes the window from the feed's coalesceWindowMs."""
    feed = Feed()
    clock = Clock()
    settings = FeedSettings("fx", "generic-rest", URL, (EURUSD, GAS), coalesce_window_s=window_ms / 1000)
    fetch = open_fetcher(settings, {}.__getitem__, transport=httpx.MockTransport(feed), clock=clock)

    async def scenario() -> list[FetchResult]:
        feed.gate, feed.entered = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(fetch.fetch())
        await feed.entered.wait()
        clock.now += later_ms / 1000
        second = asyncio.create_task(fetch.fetch())
        feed.gate.set()
        return [await first, await second]

    assert all(r.ok for r in run(fetch, scenario))
    assert len(feed.requests) == fetches


def test_a_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    feed = Feed()
    fetch = fetcher(feed)

    async def scenario() -> FetchResult:
        feed.gate, feed.entered = asyncio.Event(), asyncio.Event()
        impatient = asyncio.create_task(fetch.fetch())
        patient = asyncio.create_task(fetch.fetch())
        await feed.entered.wait()
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        feed.gate.set()
        return await patient

    assert run(fetch, scenario).snapshot == EXPECTED
    assert len(feed.requests) == 1


def test_an_adapter_bug_becomes_a_failure_not_an_exception() -> None:
    async def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug")

    fetch = fetcher(broken)
    result: FetchResult = run(fetch, fetch.fetch)
    assert result.status == "data_fetch_failed"
    assert fetch.counters.failures == {"internal": 1}


def test_close_cancels_fetches_in_flight_and_waiters_get_a_failure() -> None:
    feed = Feed()
    fetch = fetcher(feed)

    async def scenario() -> FetchResult:
        feed.gate, feed.entered = asyncio.Event(), asyncio.Event()
        waiting = asyncio.create_task(fetch.fetch())
        await feed.entered.wait()
        await fetch.aclose()
        return await waiting

    result = run(fetch, scenario)
    assert result.status == "data_fetch_failed"
    assert "cancelled" in result.reason


def test_empty_instrument_set_is_a_programming_error() -> None:
    fetch = fetcher(Feed())

    async def scenario() -> None:
        with pytest.raises(ValueError):
            await fetch.fetch([])

    run(fetch, scenario)


def test_open_fetcher_builds_the_breaker_from_the_settings() -> None:
    settings = FeedSettings(
        "fx", "generic-rest", URL, (EURUSD, GAS), timeout_s=0.15, breaker_threshold=4, breaker_reset_s=30.0
    )
    fetch = open_fetcher(settings, {}.__getitem__, transport=httpx.MockTransport(Feed()))
    assert fetch.breaker is not None
    assert (fetch.breaker.failure_threshold, fetch.breaker.reset_after) == (4, 30.0)
    assert run(fetch, fetch.fetch).snapshot == EXPECTED
    no_breaker = open_fetcher(FeedSettings("fx", "generic-rest", URL, (EURUSD,)), {}.__getitem__)
    assert no_breaker.breaker is None
    asyncio.run(no_breaker.aclose())
