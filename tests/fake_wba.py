"""An in-test fake TradeSense WBA server (docs/wba-protocol.md), for the adapter and collector tests.

Loopback only, OS-picked port. Runs in the test's own event loop (`async with FakeWba(...)`).
State the tests steer directly:

- `records`: the CDR JSON objects the server retains, in reportedAt order (append to "report").
- `faults`: actions for the next polls, consumed one per poll: "close" (close 1011 instead of
  answering: a batch lost mid-flight), "going_away" (close 4503), "silent" (never answer),
  "replay" (answer from 3 CDRs before the cursor: duplicates re-sent), or an error code
  ("unavailable", "cursor_invalid", "bad_request", "too_many_traders", "unauthorized").
- `down`: refuse the websocket handshake with HTTP 503 (and `await drop()` closes live sockets).
- `restart()`: a new cursor epoch (old cursors answer cursor_invalid) and live sockets dropped.

Cursors are `<epoch>:<position>`: replayable on the same epoch, like a stateless server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

TOKEN = "tsk-LIVE-9f8e7d6c5b4a-secret"
BASE_MS = int(dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC).timestamp()) * 1000
_epochs = itertools.count(1)
_QUIET = logging.getLogger("fake_wba.server")
_QUIET.setLevel(logging.INFO)  # websockets logs frames at DEBUG, the auth frame (and its token) included


def iso(epoch_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch_ms // 1000, dt.UTC) + dt.timedelta(milliseconds=epoch_ms % 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_cdr(index: int, *, switch: str = "ldn-iptrade-01", spacing_ms: int = 1000) -> dict[str, Any]:
    """CDR number `index`: reported at BASE_MS + index * spacing_ms (so a list of them is in order)."""
    duration = 5_000 + (index * 7_919) % 120_000
    reported = BASE_MS + index * spacing_ms
    end = reported - 150
    start = end - duration
    return {
        "cdrId": f"{switch}:{index:09d}",
        "traderId": f"T-{1001 + index % 3}",
        "turret": f"TUR-{1001 + index % 3}",
        "line": f"L{1 + index % 4}",
        "direction": ("in", "out", "intercom")[index % 3],
        "counterparty": "+44 20 7946 0001",
        "startTime": iso(start),
        "endTime": iso(end),
        "durationMs": duration,
        "reportedAt": iso(reported),
    }


def make_cdrs(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [make_cdr(i) for i in range(first, first + count)]


def _ms(text: str) -> int:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


class FakeWba:
    """One WBA endpoint. `polls` records every poll request received (cursor, since, limit)."""

    def __init__(
        self,
        records: list[dict[str, Any]] | None = None,
        *,
        token: str = TOKEN,
        name: str = "tradesense-a1",
        role: str = "primary",
        heartbeat_s: float = 10.0,
        heartbeats: bool = True,
        max_limit: int = 5000,
        traders: int = 3,
        retry_after_ms: int = 250,
    ) -> None:
        self.records = list(records or [])
        self.token = token
        self.name, self.role = name, role
        self.heartbeat_s, self.heartbeats = heartbeat_s, heartbeats
        self.max_limit, self.traders, self.retry_after_ms = max_limit, traders, retry_after_ms
        self.faults: list[str] = []
        self.polls: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        """Every client frame received (the auth frames included)."""
        self.connections = 0
        """Handshakes accepted (authenticated or not)."""
        self.attempts = 0
        """Handshakes attempted (refused ones while `down` included)."""
        self.down = False
        self.epoch = f"e{next(_epochs)}"
        self._server: Server | None = None
        self._live: set[ServerConnection] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/wba"

    async def __aenter__(self) -> FakeWba:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._gate, logger=_QUIET)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.drop()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def drop(self, code: int = 1011) -> None:
        """Close every live socket (a crash of the connection, not of the server)."""
        for ws in list(self._live):
            with contextlib.suppress(Exception):
                await ws.close(code, "dropped")

    async def restart(self) -> None:
        """A restarted server: cursors it handed out before are no longer recognised."""
        self.epoch = f"e{next(_epochs)}"
        await self.drop(1012)

    def _gate(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        if self.down:
            return Response(503, "Service Unavailable", Headers(), b"down\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._live.add(ws)
        beating: asyncio.Task[None] | None = None
        try:
            first = json.loads(await ws.recv())
            self.frames.append(first)
            if first.get("type") != "auth" or first.get("token") != self.token:
                await self._error(ws, first.get("id"), "unauthorized", "the token is not valid")
                await ws.close(4401, "unauthorized")
                return
            await ws.send(json.dumps(self._auth_ok(first.get("id"))))
            if self.heartbeats:
                beating = asyncio.create_task(self._beat(ws))
            async for raw in ws:
                message = json.loads(raw)
                self.frames.append(message)
                if message.get("type") == "ping":
                    await ws.send(json.dumps({"type": "pong", "id": message.get("id"), "time": iso(BASE_MS)}))
                elif message.get("type") == "poll":
                    await self._poll(ws, message)
                else:
                    await self._error(ws, message.get("id"), "bad_request", "unknown request type")
        except ConnectionClosed:
            pass
        finally:
            if beating is not None:
                beating.cancel()
            self._live.discard(ws)

    def _auth_ok(self, request_id: Any) -> dict[str, Any]:
        server = {"name": self.name, "role": self.role, "switch": "ldn-iptrade-01", "traders": self.traders}
        server["time"] = iso(BASE_MS)
        return {
            "type": "auth_ok",
            "id": request_id,
            "server": server,
            "heartbeatSeconds": self.heartbeat_s,
            "maxLimit": self.max_limit,
        }

    async def _beat(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_s)  # the server's schedule, not a test synchronisation
                await ws.send(json.dumps({"type": "heartbeat", "time": iso(BASE_MS)}))

    async def _error(self, ws: ServerConnection, request_id: Any, code: str, message: str) -> None:
        frame: dict[str, Any] = {"type": "error", "id": request_id, "code": code, "message": message}
        if code == "unavailable":
            frame["retryAfterMs"] = self.retry_after_ms
        await ws.send(json.dumps(frame))

    async def _poll(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.polls.append({k: message.get(k) for k in ("cursor", "since", "limit")})
        request_id, fault = message.get("id"), self.faults.pop(0) if self.faults else None
        if fault == "close":
            await ws.close(1011, "crashed mid-batch")
            return
        if fault == "going_away":
            await ws.close(4503, "going away")
            return
        if fault == "silent":
            return
        if fault not in (None, "replay"):
            await self._error(ws, request_id, fault, f"injected {fault}")
            return
        limit, cursor, since = message.get("limit"), message.get("cursor"), message.get("since")
        if not isinstance(limit, int) or not 1 <= limit <= self.max_limit:
            await self._error(ws, request_id, "bad_request", f"limit must be 1..{self.max_limit}")
            return
        if cursor is not None:
            epoch, _, position = str(cursor).partition(":")
            if epoch != self.epoch or not position.isdigit():
                await self._error(ws, request_id, "cursor_invalid", "unknown cursor")
                return
            start = int(position)
        elif since is not None:
            since_ms = _ms(since)
            start = next((i for i, r in enumerate(self.records) if _ms(r["reportedAt"]) >= since_ms), len(self.records))
        else:
            start = 0
        if fault == "replay":
            start = max(0, start - 3)
        page = self.records[start : start + limit]
        end = start + len(page)
        answer = {"type": "cdrs", "id": request_id, "cursor": f"{self.epoch}:{end}", "more": end < len(self.records)}
        await ws.send(json.dumps({**answer, "cdrs": page}))
