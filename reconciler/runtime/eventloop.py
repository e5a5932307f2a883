"""The runtime's event loop: uvloop when it is installed, else asyncio's own.

Why. Stamping a call is a dozen loop callbacks (the intake, the feed's coalesced fetch, the
platform writer's reply, the evidence commit); at 1,000 calls a second asyncio's pure-Python
scheduling was a fifth of the runtime's core. uvloop (libuv, the loop Node.js uses) runs the
same code with less overhead per callback: on this 2-core machine, snapshot-ready p99 at
1,000 calls/s went from 36-47 ms to 27-29 ms (bench/bench_runtime.py, docs/BENCHMARKS.md).
It has no Windows build; there, and wherever it is missing, asyncio's loop is used.

Called by: reconciler.cli (`recon runtime`), reconciler.runtime.snapshot.attach_worker (the
platform writer process), bench/bench_runtime.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """A callable making the runtime's event loop (uvloop's when installed)."""
    try:
        import uvloop  # noqa: PLC0415 (optional: absent on Windows)
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)` on the runtime's event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coroutine)
