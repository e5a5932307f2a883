"""HTTP plumbing of the sandbox services: one asyncio HTTP/1.1 server per service, in its own thread.

The server knows nothing of Genesys or market data: `handle(method, target, headers, body) ->
Response` does all the work (e.g. reconciler.sandbox.genesys_server.GenesysSandbox.handle).
Each service's server runs an event loop in a daemon thread. A request's `handle` runs either
on that loop (the service says so with `runs_on_loop`: quick, CPU-only answers such as the
Genesys data plane and the market-data feed) or in a small worker pool (anything that may block:
exports to S3, the call simulator). A handler never sleeps: a latency knob sets
`Response.delay_s`, and the transport waits that long before sending, while it goes on serving
other connections.

Why not `http.server.ThreadingHTTPServer` (the first version): one thread per kept-alive
connection, each parsing headers with the e-mail parser, contending for one interpreter. Under
the runtime bench (2,000 requests a second on two cores) the daemon spent its core on that, and
the market-data feed in the same process answered 50 ms late.

HTTP/1.1 as the clients here speak it (httpx, aiohttp, urllib3 in the Genesys SDK): keep-alive,
`Content-Length` and chunked request bodies, `Expect: 100-continue`, `Connection: close`.
Requests on one connection are answered in order.

`LoopbackService` is the lifecycle every sandbox HTTP service shares (start on an OS-picked
port, stop, context manager, base URL).

Called by: reconciler.sandbox.genesys_server, marketdata and tradesense. Imports only the stdlib
(and uvloop when installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes | None
    headers: dict[str, str]
    delay_s: float = 0.0
    """Seconds the transport waits before sending (a latency knob); handlers never sleep."""


Handle = Callable[[str, str, dict[str, str], bytes], Response]
OnLoop = Callable[[str, str], bool]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 256 * 2**20
_REASONS = {status.value: status.phrase for status in HTTPStatus}


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


class _BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.1 request we can answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (less CPU per request: the runtime bench's org and feed
    share two cores with the runtime), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 (optional: absent on Windows)
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopServer:
    """An HTTP/1.1 server on 127.0.0.1 (OS-picked port) whose event loop runs in a daemon thread."""

    def __init__(self, handle: Handle, on_loop: OnLoop, *, name: str, backlog: int, workers: int = 8) -> None:
        self.handle, self.on_loop, self.name, self.backlog = handle, on_loop, name, backlog
        self.loop = _new_event_loop()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-worker")
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._date = (0, "")

    def start(self) -> None:
        """Bind and serve; returns once the port is known."""
        self.thread.start()
        self.address = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=10)

    def stop(self) -> None:
        """Stop listening, close every connection, end the thread (idempotent)."""
        if not self.thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _listen(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", 0, backlog=self.backlog, limit=_MAX_HEAD
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    request = await _read_request(reader, writer)
                except _BadRequest as error:
                    body = json.dumps({"error": "bad_request", "message": str(error)}).encode()
                    writer.write(self._encode(Response(error.status, body, {}), "GET", keep_alive=False))
                    await writer.drain()
                    await _linger(reader)
                    return
                if request is None:
                    return
                response = await self._answer(request)
                if response.delay_s > 0:
                    await asyncio.sleep(response.delay_s)
                keep_alive = _keep_alive(request)
                writer.write(self._encode(response, request.method, keep_alive=keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, request: _Request) -> Response:
        args = (request.method, request.target, request.headers, request.body)
        try:
            if self.on_loop(request.method, request.target.partition("?")[0]):
                return self.handle(*args)
            return await self.loop.run_in_executor(self.pool, self.handle, *args)
        except Exception:  # a bug in a handler: say so on the wire and on stderr, keep serving
            print(f"{self.name}: {request.method} {request.target} failed", file=sys.stderr)
            traceback.print_exc()
            body = json.dumps({"error": "internal_error", "message": "the sandbox failed; see its log"}).encode()
            return Response(500, body, {"Content-Type": "application/json"})

    def _encode(self, response: Response, method: str, *, keep_alive: bool) -> bytes:
        lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}", f"Date: {self._http_date()}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        body = response.body or b""
        if response.status in {204, 304}:
            body = b""
        else:
            lines.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if method == "HEAD" else head + body

    def _http_date(self) -> str:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, formatdate(usegmt=True))
        return self._date[1]


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _Request | None:
    """The next request on the connection, None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise _BadRequest(400, "the request head is incomplete") from error
        return None
    except asyncio.LimitOverrunError as error:
        raise _BadRequest(431, "the request head is over 64 KiB") from error
    lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, f"not an HTTP/1.x request line: {lines[0][:80]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, f"not a header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError as error:
            raise _BadRequest(400, "Content-Length is not a number") from error
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequest(413, "the request body is too large")
        body = await reader.readexactly(length) if length else b""
    return _Request(method, target, version, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise _BadRequest(400, "bad chunk size") from error
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise _BadRequest(413, "the request body is too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _linger(reader: asyncio.StreamReader) -> None:
    """Before closing on a bad request: read what the client is still sending (up to 1 s), so
    closing with unread bytes does not reset the connection before it reads the answer."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            while await reader.read(65536):
                pass


def _keep_alive(request: _Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


class LoopbackService:
    """A sandbox service served on 127.0.0.1 by a `LoopServer`: start (port picked by the OS),
    stop (connections closed), context manager, base URL. Subclasses implement `handle`, may
    override `runs_on_loop`, and may extend `start`/`stop` for their own parts."""

    thread_name = "sandbox"
    backlog = 128
    """The listen backlog: raise it where hundreds of clients may connect at once."""

    _server: LoopServer | None = None

    handle: Handle
    """The service's request handler (a method of the subclass)."""

    def runs_on_loop(self, method: str, path: str) -> bool:
        """Whether `handle` may answer this request on the server's event loop: it is quick and
        never blocks (no sleeping, no outbound I/O). Default no: a worker thread answers."""
        return False

    def start(self) -> str:
        """Bind 127.0.0.1 on an OS-picked port, serve in a daemon thread, return the base URL."""
        if self._server is not None:
            return self.base_url
        server = LoopServer(self.handle, self.runs_on_loop, name=self.thread_name, backlog=self.backlog)
        server.start()
        self._server = server
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close kept-alive connections (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

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
        host, port = self._server.address
        return f"http://{host}:{port}"
