"""HTTP plumbing of the Genesys sandbox: a ThreadingHTTPServer that hands each request to a callable.

The server knows nothing of Genesys: `handle(method, target, headers, body) -> Response` does all
the work (reconciler.sandbox.genesys_server.GenesysSandbox.handle). Kept-alive connections are
tracked so stop() can close them and their handler threads end.

`LoopbackService` is the lifecycle every sandbox HTTP service shares (start on an OS-picked
port, stop, context manager, base URL).

Called by: reconciler.sandbox.genesys_server and marketdata. Imports only the stdlib.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes | None
    headers: dict[str, str]


Handle = Callable[[str, str, dict[str, str], bytes], Response]


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handle: Handle) -> None:
        super().__init__(address, _Handler)
        self.handle = handle
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Shut down kept-alive client connections so their handler threads end."""
        with self.connections_lock:
            conns = list(self.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class LoopbackService:
    """A sandbox service served on 127.0.0.1 by a `Server` in a daemon thread: start (port
    picked by the OS), stop (kept-alive connections closed), context manager, base URL.
    Subclasses implement `handle` and may extend `start`/`stop` for their own parts."""

    server_class: type[Server] = Server
    thread_name = "sandbox"

    _server: Server | None = None
    _thread: threading.Thread | None = None

    handle: Handle
    """The service's request handler (a method of the subclass)."""

    def start(self) -> str:
        """Bind 127.0.0.1 on an OS-picked port, serve in a daemon thread, return the base URL."""
        if self._server is not None:
            return self.base_url
        self._server = self.server_class(("127.0.0.1", 0), self.handle)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close kept-alive connections (idempotent)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.thread_name} is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.open_connections.discard(self.connection)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.handle(self.command, self.path, headers, raw)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body or b"")))
        self.end_headers()
        if response.body and response.status != 204:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""
