"""An async token bucket: keeps one Genesys client under its request budget.

Genesys Cloud's default budget is often quoted as 300 requests per minute per
client-credentials token (UNCONFIRMED figure, see REFERENCES §1), so the bucket refills at
`rate_per_minute / 60` tokens per second and holds at most `capacity` (the burst allowed
after a quiet spell). Over any window of T seconds at most `capacity + rate * T` requests
pass. `acquire()` waits, in arrival order, while the bucket is empty.

The clock and the sleep function are injectable so tests never really sleep.

Called by: `reconciler.providers.genesys.client.GenesysClient` before every API request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_RATE_PER_MINUTE = 300.0
DEFAULT_BURST = 50
_EPSILON = 1e-9


class TokenBucket:
    """`rate_per_minute` sustained, `capacity` burst; starts full."""

    def __init__(
        self,
        rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
        capacity: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.rate = rate_per_minute / 60.0
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = asyncio.Lock()
        self.waited = 0.0
        """Total seconds callers were asked to wait (for --verbose and benchmarks)."""

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_minute={self.rate * 60:g}, capacity={self.capacity:g})"

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        """Take one token, waiting until one is available."""
        async with self._lock:
            self._refill()
            while self._tokens < 1.0 - _EPSILON:
                delay = (1.0 - self._tokens) / self.rate
                self.waited += delay
                await self._sleep(delay)
                self._refill()
            self._tokens = max(0.0, self._tokens - 1.0)
