"""The TradeSense sandbox's websocket side: the WBA protocol of docs/wba-protocol.md, served.

One `websockets` asyncio server on 127.0.0.1 (OS port) in its own thread and event loop (the
pattern of notifications.py). Each member of a server listens at
`ws://127.0.0.1:<port>/wba/<server>/<primary|secondary>`; an unknown path is refused at the
handshake with 404. Frames (text, one JSON object each):

  client                                        server
  auth {id, token, client}                      auth_ok {id, server {name, role, switch, traders,
                                                time}, heartbeatSeconds, maxLimit}; a wrong token
                                                or anything but auth first: error unauthorized,
                                                close 4401; more than 200 traders configured:
                                                error too_many_traders, close 1008
  poll {id, cursor, since, limit}               cdrs {id, cursor, more, cdrs} (tradesense_store.poll)
                                                or error bad_request | cursor_invalid
  ping {id}                                     pong {id, time}
  (a request without a fresh id, or of an       error bad_request; the socket stays open
  unknown type)
                                                heartbeat {time} every heartbeatSeconds after auth

Knobs at work here: `down` (a connecting client gets error unavailable {retryAfterMs} and close
4503), `slowPollMs` (the poll answer waits; heartbeats keep flowing), `dropAfterFrames` (the
TCP connection is aborted once that many frames went out on it). `close()` is the control
API's disconnect: a 4503 close handshake (not awaited) or an abort.

Called by: reconciler.sandbox.tradesense. Imports the stdlib, `websockets` and sandbox siblings.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import re
import secrets
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.http11 import Response as WsResponse

from reconciler.sandbox.tradesense_store import MAX_TRADERS, TradeSenseError, TsServer, WbaError, now_ms
from reconciler.sandbox.wire import JsonObj, iso
from reconciler.sandbox.ws_thread import WebSocketThread

WS_PATH_RE = re.compile(r"^/wba/(?P<name>[^/]+)/(?P<role>primary|secondary)$")
CLOSE_UNAUTHORIZED, CLOSE_GOING_AWAY, CLOSE_REFUSED = 4401, 4503, 1008
RETRY_AFTER_MS = 1000


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    server: TsServer
    role: str
    frames: int = 0
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WbaServer(WebSocketThread):
    """The websocket server of every TradeSense server in `servers` (shared with the owner, which
    guards it and every TsServer with `lock`)."""

    thread_name = "tradesense-ws"
    what = "the TradeSense websocket server"

    def __init__(
        self, lock: threading.Lock, servers: dict[str, TsServer], *, heartbeat_s: float, max_limit: int
    ) -> None:
        super().__init__()
        self.lock, self._servers = lock, servers
        self.heartbeat_s, self.max_limit = heartbeat_s, max_limit
        self._conns: set[_Conn] = set()  # loop only
        self._tasks: set[asyncio.Task[None]] = set()  # closes under way (loop only)

    def _serve_options(self) -> dict[str, Any]:
        return {"process_request": self._admit}

    async def _before_close(self) -> None:
        for conn in list(self._conns):
            conn.ws.transport.abort()

    def close(self, server: TsServer, role: str | None, *, abrupt: bool) -> int:
        """From any thread: close the sockets of `server` (one member, or both); how many."""
        return int(self._on_loop(self._close(server, role, abrupt=abrupt)))

    def _on_loop(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        loop = self._loop
        if loop is None:
            coroutine.close()
            return 0
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=5)
        except FutureTimeout as error:
            raise TradeSenseError(503, "unavailable", "the websocket loop did not answer") from error

    def _admit(self, ws: ServerConnection, request: Request) -> WsResponse | None:
        match = WS_PATH_RE.match(request.path.split("?", 1)[0])
        with self.lock:
            server = self._servers.get(match["name"]) if match else None
            known = server is not None and match is not None and match["role"] in server.members
        return None if known else ws.respond(http.HTTPStatus.NOT_FOUND, "no such TradeSense server\n")

    async def _send(self, conn: _Conn, message: JsonObj) -> None:
        """Send one frame, counting it; abort the connection once dropAfterFrames frames went out."""
        async with conn.send_lock:
            await conn.ws.send(json.dumps(message))
            with self.lock:
                conn.frames += 1
                conn.server.members[conn.role].stats["framesSent"] += 1
                limit = conn.server.knobs.drop_after[conn.role]
            if limit is not None and conn.frames >= limit:
                conn.ws.transport.abort()
                raise ConnectionClosed(None, None)

    async def _close(self, server: TsServer, role: str | None, *, abrupt: bool) -> int:
        """Close the sockets of `server` (one member or both): abort, or start a 4503 close
        handshake without waiting for the client's answer."""
        targets = [c for c in self._conns if c.server is server and role in (None, c.role)]
        for conn in targets:
            self._conns.discard(conn)
            if abrupt:
                conn.ws.transport.abort()
            else:
                task = asyncio.create_task(conn.ws.close(CLOSE_GOING_AWAY, "going away: use the HA partner"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return len(targets)

    async def _handler(self, ws: ServerConnection) -> None:
        match = WS_PATH_RE.match(ws.request.path.split("?", 1)[0]) if ws.request else None
        with self.lock:
            server = self._servers.get(match["name"]) if match else None
            if server is None or match is None or match["role"] not in server.members:
                return
            conn = _Conn(ws, server, match["role"])
            member = server.members[conn.role]
            member.stats["connections"] += 1
            down = server.knobs.down[conn.role]
        self._conns.add(conn)
        beat: asyncio.Task[None] | None = None
        try:
            if down:
                error = _error(None, "unavailable", "the server is down (sandbox knob)")
                await self._send(conn, {**error, "retryAfterMs": RETRY_AFTER_MS})
                await ws.close(CLOSE_GOING_AWAY, "going away: use the HA partner")
                return
            seen: set[str] = set()  # request ids used on this connection
            if not await self._authenticate(conn, seen):
                return
            beat = asyncio.create_task(self._beat(conn))
            async for raw in ws:
                await self._answer(conn, raw, seen)
        except ConnectionClosed:
            pass
        finally:
            if beat is not None:
                beat.cancel()
            self._conns.discard(conn)

    async def _authenticate(self, conn: _Conn, seen: set[str]) -> bool:
        raw = await conn.ws.recv()
        request = _parse(raw)
        request_id = request.get("id") if isinstance(request.get("id"), str) else None
        if request_id:
            seen.add(request_id)
        with self.lock:
            server = conn.server
            ok = request.get("type") == "auth" and secrets.compare_digest(str(request.get("token")), server.token)
            if not ok:
                server.members[conn.role].stats["authFailures"] += 1
            info = {"name": server.name, "role": conn.role, "switch": server.switch, "traders": len(server.traders)}
        if not ok:
            message = "the first frame must be auth" if request.get("type") != "auth" else "the token is not valid"
            await self._send(conn, _error(request_id, "unauthorized", message))
            await conn.ws.close(CLOSE_UNAUTHORIZED, "unauthorized")
            return False
        if server.over_limit:
            message = (
                f"this server has {info['traders']} traders configured; at most {MAX_TRADERS}: it refuses to serve"
            )
            await self._send(conn, _error(request_id, "too_many_traders", message))
            await conn.ws.close(CLOSE_REFUSED, "too many traders")
            return False
        answer = {"type": "auth_ok", "id": request_id, "server": {**info, "time": iso(now_ms())}}
        await self._send(conn, {**answer, "heartbeatSeconds": self.heartbeat_s, "maxLimit": self.max_limit})
        return True

    async def _answer(self, conn: _Conn, raw: str | bytes, seen: set[str]) -> None:
        request = _parse(raw)
        request_id, kind = request.get("id"), request.get("type")
        if not isinstance(request_id, str) or not request_id or request_id in seen:
            message = "each request needs an id (a string unique on the connection)"
            await self._send(conn, _error(request_id if isinstance(request_id, str) else None, "bad_request", message))
            return
        seen.add(request_id)
        if kind == "ping":
            await self._send(conn, {"type": "pong", "id": request_id, "time": iso(now_ms())})
        elif kind == "poll":
            with self.lock:
                conn.server.members[conn.role].stats["polls"] += 1
                delay = conn.server.knobs.slow_poll_ms
            if delay:
                await asyncio.sleep(delay / 1000)
            try:
                with self.lock:
                    answer = conn.server.poll(conn.role, request, self.max_limit)
            except WbaError as error:
                await self._send(conn, _error(request_id, error.code, error.message))
                return
            await self._send(conn, {"type": "cdrs", "id": request_id, **answer})
        else:
            await self._send(conn, _error(request_id, "bad_request", f"unknown request type {kind!r} (poll or ping)"))

    async def _beat(self, conn: _Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_s)
                await self._send(conn, {"type": "heartbeat", "time": iso(now_ms())})


def _error(request_id: str | None, code: str, message: str) -> JsonObj:
    return {"type": "error", "id": request_id, "code": code, "message": message}


def _parse(raw: str | bytes) -> JsonObj:
    try:
        message = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}
