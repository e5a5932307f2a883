"""Fault injection for the fake providers: failing calls and simulated crashes.

A `FaultPlan` is shared by every provider it is given to (typically every provider of one
`fake_providers(...)` set), so its counters span kinds.

Failing calls: `FaultPlan(fail={("create", "Queue/a"): "quota exceeded"})` makes that call
raise ProviderError without touching the store. Keys are (operation, target): operations
are "list" (observe_all), "discover", "create", "update", "delete"; the target is the
resource address ("Queue/a") for create/update/delete and the kind ("Queue") for list and
discover; "*" as target matches any. A value is a message, or a `Fault` for a retryable
error or one that fails only the first `times` calls.

Crashes: `FaultPlan(crash_after=k)` counts every mutating call (create, update, delete)
across all providers sharing the plan, and "kills the process" on the call numbered k
(0-based, so exactly k earlier mutating calls have returned to the caller):

- `crash_point="before"` (default): the crash happens before the call reaches the
  platform: k changes landed, and the caller learned about all of them.
- `crash_point="after"`: the call's change lands on the platform, then the crash happens
  before the call returns: k+1 changes landed but the caller never learns the last id.
  This is the worst case a resumed apply must survive (find the object by natural key).

At the crash point `on_crash()` is called; the default raises `SimulatedCrash`, a
BaseException (not Exception) so the engine's error handling cannot swallow it, as it
cannot catch kill -9. For a real kill in a subprocess test pass
`on_crash=lambda: os.kill(os.getpid(), signal.SIGKILL)`. If `on_crash` returns, the call
raises SimulatedCrash anyway. After the crash the plan stays crashed: every later provider
call through it (reads included) raises SimulatedCrash, as a dead process makes no more
calls, so no concurrent task can land a change after the crash. Resume with providers
built without the plan (or with a new one).

Calls are counted when they start, after the provider's latency sleep; from then on a
call runs without awaiting, so "started" and "completed" agree even under asyncio.gather.
A call failed by `fail` still counts as a mutating call (it reached the platform); when it
is also an "after" crash point the process dies right after the failure.

Called by: reconciler.testing.fake (FakeProvider), engine crash tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from reconciler.providers.base import ProviderError

MUTATING = frozenset({"create", "update", "delete"})
CrashPoint = Literal["before", "after"]


class SimulatedCrash(BaseException):
    """The process "died" at a FaultPlan crash point. A BaseException on purpose: like
    kill -9, nothing that catches Exception may survive it."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure: the ProviderError message, whether it is retryable, and how
    many matching calls fail (None: every one)."""

    message: str
    retryable: bool = False
    times: int | None = None


@dataclass
class FaultPlan:
    """Which calls fail and where the process crashes; see the module docstring.

    Mutable: it counts calls. `mutating_calls` is the number of mutating calls started so
    far (run once without `crash_after` to learn how many an apply makes, then crash at
    every k below that). `crashed` is True once the crash point was reached.
    """

    fail: Mapping[tuple[str, str], str | Fault] = field(default_factory=dict)
    crash_after: int | None = None
    crash_point: CrashPoint = "before"
    on_crash: Callable[[], object] | None = None
    mutating_calls: int = field(default=0, init=False)
    crashed: bool = field(default=False, init=False)
    _failed: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.crash_after is not None and self.crash_after < 0:
            raise ValueError(f"crash_after must be 0 or more, not {self.crash_after}")
        if self.crash_point not in ("before", "after"):
            raise ValueError(f"crash_point must be 'before' or 'after', not {self.crash_point!r}")

    def check_alive(self) -> None:
        """Raise SimulatedCrash when the plan already crashed (the process is dead)."""
        if self.crashed:
            raise SimulatedCrash("the simulated process already crashed; no further provider calls")

    def start(self, operation: str, target: str) -> bool:
        """Step 1 of a provider call, before it reaches the platform: raise SimulatedCrash
        when the process is dead or this is a "before" crash point; count mutating calls.
        Returns True when this call must crash after its change (an "after" crash point);
        the provider then calls `inject` and, once the change landed, `crash_now`."""
        self.check_alive()
        if operation not in MUTATING:
            return False
        index = self.mutating_calls
        self.mutating_calls += 1
        if self.crash_after is None or index != self.crash_after:
            return False
        if self.crash_point == "before":
            self.crash_now(f"before {operation} {target} (mutating call {index})")
        return True

    def inject(self, operation: str, target: str, crash_after_change: bool = False) -> None:
        """Step 2, as the call reaches the platform: raise the injected ProviderError for
        (operation, target), if any. When the call was also an "after" crash point the
        process dies right after the failure (SimulatedCrash instead of the error)."""
        try:
            self._raise_fault(operation, target)
        except ProviderError as error:
            if crash_after_change:
                self.crash_now(f"after {operation} {target} failed: {error.message}")
            raise

    def crash_now(self, detail: str) -> None:
        """Mark the plan crashed, call `on_crash`, and raise SimulatedCrash if it returns."""
        self.crashed = True
        if self.on_crash is not None:
            self.on_crash()
        raise SimulatedCrash(f"simulated crash after {self.crash_after} mutating calls: {detail}")

    def _raise_fault(self, operation: str, target: str) -> None:
        for key in ((operation, target), (operation, "*")):
            spec = self.fail.get(key)
            if spec is None:
                continue
            fault = spec if isinstance(spec, Fault) else Fault(spec)
            used = self._failed.get(key, 0)
            if fault.times is not None and used >= fault.times:
                continue
            self._failed[key] = used + 1
            raise ProviderError(
                f"{operation} {target} failed: {fault.message}",
                next_step="injected by FaultPlan",
                retryable=fault.retryable,
            )
