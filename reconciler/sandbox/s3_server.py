"""The sandbox's S3 (and KMS): moto's server on loopback, whose state outlives the daemon.

`S3Sandbox(directory).start()` restores DIR/s3-state.pickle (reconciler.sandbox.s3_state)
into moto's backends, then serves moto's WSGI application on 127.0.0.1 (port picked by the
OS) in a thread, as moto's ThreadedMotoServer does. Persistence:

- every request that can change state (any method but GET, HEAD and OPTIONS; KMS's reads are
  POSTs too) runs under one lock and marks the state dirty; reads run concurrently;
- a saver thread writes the state within `SAVE_DELAY_S` of the first write after the last save
  (writes in between share the save), holding the lock only while pickling, so the file is
  always a consistent cut, never half a request;
- `stop()` (the daemon's SIGTERM/SIGINT path: `recon sandbox down`) stops serving, then
  saves once more.

On kill -9 (or a crash, or the machine losing power) the writes of at most the last
`SAVE_DELAY_S` are lost, and nothing else: the file is replaced atomically, so the next start
restores the last complete save. A state file that cannot be trusted or read is moved aside
(`s3-state.pickle.rejected`), the S3 starts empty, and `problem` says why (the daemon logs it and
puts it in endpoints.json, which `recon sandbox up` and `status` show).

Called by: reconciler.sandbox.daemon. Imports the stdlib, werkzeug and moto (the server extra's
dependencies) and reconciler.sandbox.s3_state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("reconciler.sandbox.s3")

SAVE_DELAY_S: Final = 1.0
"""A write is on disk at most this long after it was answered (the kill -9 window)."""
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class S3Sandbox:
    """See the module docstring."""

    def __init__(self, directory: Path) -> None:
        from reconciler.sandbox.s3_state import STATE_FILE  # noqa: PLC0415 (moto is imported by it)

        self.path = directory / STATE_FILE
        self.problem: str | None = None
        """Why the saved state was not restored or cannot be saved (None: all is well)."""
        self.restored = 0
        self.saves = 0
        self._key: bytes | None = None
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    def start(self) -> str:
        """Restore, bind and serve; the base URL."""
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        self._restore()
        app = self._guarded(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        serving = threading.Thread(target=self._server.serve_forever, name="s3-sandbox", daemon=True)
        serving.start()
        self._threads.append(serving)
        if self._key is not None:
            saver = threading.Thread(target=self._save_loop, name="s3-sandbox-saver", daemon=True)
            saver.start()
            self._threads.append(saver)
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving, then save a last time."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        self._save()

    def _restore(self) -> None:
        from reconciler.sandbox import s3_state  # noqa: PLC0415

        try:
            self._key = s3_state.state_key()
        except s3_state.StateProblem as error:
            self.problem = f"{error}; the S3 is not persisted"
            log.warning("s3 sandbox: %s", self.problem)
            return
        try:
            self.restored = s3_state.restore(self.path, self._key)
        except s3_state.StateProblem as error:
            try:
                where = f"moved to {s3_state.set_aside(self.path).name}"
            except OSError as move_error:
                self._key = None  # never overwrite what could not be moved aside
                where = f"left in place ({move_error.strerror or move_error}) and not saved over"
            self.problem = f"{error}; {where}, the S3 started empty"
            log.warning("s3 sandbox: %s", self.problem)
            return
        if self.restored:
            log.info("s3 sandbox: restored %d backend(s) from %s", self.restored, self.path)

    def _guarded(self, app: Wsgi) -> Wsgi:
        lock, dirty = self._lock, self._dirty

        def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD", "GET") in _SAFE_METHODS:
                return app(environ, start_response)
            with lock:  # a write is whole in the saved state or not in it at all
                result = app(environ, start_response)
                try:
                    body = b"".join(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                dirty.set()
            return [body]

        return guarded

    def _save_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._dirty.wait(timeout=SAVE_DELAY_S):
                continue
            if self._stopping.wait(SAVE_DELAY_S / 2):  # let a burst of writes share one save
                return  # stop() saves
            self._save()

    def _save(self) -> None:
        if self._key is None:
            return
        from reconciler.sandbox import s3_state  # noqa: PLC0415

        started = time.perf_counter()
        try:
            with self._lock:
                self._dirty.clear()
                payload = s3_state.snapshot()
            s3_state.write(self.path, payload, self._key)
        except Exception as error:  # a full disk must not stop the S3 answering
            self._dirty.set()
            log.exception("s3 sandbox: saving the state to %s failed: %s", self.path, error)
            return
        self.saves += 1
        log.debug("s3 sandbox: saved %d bytes in %.3f s", len(payload), time.perf_counter() - started)
