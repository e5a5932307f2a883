"""The lifecycle every sandbox websocket server shares: one `websockets` asyncio server on
127.0.0.1 (an OS-picked port) in a thread and event loop of its own.

`WebSocketThread` starts it (returning once it listens), stops it (from any thread,
idempotent) and gives its `ws://` base; a subclass supplies the connection handler and, when
it needs them, serve options and hooks around shutdown. Other threads reach the loop through
`_loop` (call_soon_threadsafe / run_coroutine_threadsafe).

Called by: reconciler.sandbox.notifications (Genesys notification channels) and
reconciler.sandbox.tradesense_wba (the TradeSense WBA endpoints).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import ABC, abstractmethod
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


class WebSocketThread(ABC):
    """See the module docstring. Subclasses call `super().__init__()` and define `_handler`."""

    thread_name = "sandbox-ws"
    what = "the websocket server"
    """For messages: what this server is."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._port: int | None = None

    @abstractmethod
    async def _handler(self, ws: ServerConnection) -> None:
        """Serve one connection (on the loop)."""

    def _serve_options(self) -> dict[str, Any]:
        """Extra keyword arguments for `websockets.serve` (process_request, ...)."""
        return {}

    async def _before_close(self) -> None:
        """On the loop, when stopping, before the server closes its sockets (default: nothing)."""
        return

    def _after_serving(self) -> None:
        """On the loop thread, once the server is gone, also after a failed start (default: nothing)."""
        return

    def _after_stop(self) -> None:
        """In `stop`'s thread, after the loop thread has ended (default: nothing)."""
        return

    def start(self) -> None:
        """Serve in a thread of its own; returns once it listens. Idempotent."""
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(ready),), name=self.thread_name, daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout=10) or self._port is None:
            self._thread = None
            raise RuntimeError(f"{self.what} did not start")

    def stop(self) -> None:
        """Stop serving and end the thread (idempotent)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        self._after_stop()
        self._thread = self._loop = self._stopping = None
        self._port = None

    @property
    def ws_base(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{self.what} is not running; call start() first")
        return f"ws://127.0.0.1:{self._port}"

    async def _main(self, ready: threading.Event) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with serve(self._handler, "127.0.0.1", 0, **self._serve_options()) as server:
                self._port = int(server.sockets[0].getsockname()[1])
                ready.set()
                await self._stopping.wait()
                await self._before_close()
        finally:
            self._after_serving()
            ready.set()
