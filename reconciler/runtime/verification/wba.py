"""The TradeSense WBA adapter: the one module that knows the wire schema of docs/wba-protocol.md.

`WbaClient` is an async client for ONE endpoint (one member of an HA pair): it connects over a
websocket, authenticates with the API user token, polls for CDRs (`poll(cursor, since_ms,
limit) -> WbaBatch`), answers nothing but watches the server's heartbeats (three missed mean
the connection is dead), can `ping`, and gives every request a timeout (a timeout is a dropped
connection). Error frames and close codes become `WbaError` subclasses; CDR JSON becomes
`model.Cdr` (ISO times -> epoch ms) plus the `reportedAt` the cursor store keeps.

The collector sees only `CdrSource` (a Protocol), `WbaBatch` and the `WbaError` tree: a mapping
to the real WBA replaces this module by providing those names and nothing else changes.

The token is sent in the auth frame and nowhere else: it is not in `repr`, error messages or
logs (websockets' frame-level debug logging is switched off for these connections), and it is
registered with reconciler.redact at each connect, so a server echoing it back in an error
frame (`unauthorized: token ... is revoked`) is scrubbed from every output. The endpoint must
pass reconciler.endpoints (wss://, ws:// only to loopback, never a metadata address; the
link-local opt-in is the manifest's, checked when it is validated), its host name is checked
against DNS before each connect, and frames are bounded (MAX_FRAME, MAX_QUEUED_FRAMES).

Called by: reconciler.runtime.verification.collector, tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from reconciler import endpoints, jsonsafe, redact
from reconciler.runtime.verification.wba_schema import (
    _NEXT,
    CLIENT_NAME,
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    DEFAULT_LIMIT,
    HEARTBEAT_MISSES,
    MAX_FRAME,
    MAX_QUEUED_FRAMES,
    MAX_TRADERS,
    CdrSource,
    ServerInfo,
    WbaBadRequest,
    WbaBatch,
    WbaConnectionLost,
    WbaCursorInvalid,
    WbaEndpointRefused,
    WbaError,
    WbaProtocolError,
    WbaTooManyTraders,
    WbaUnauthorized,
    WbaUnavailable,
    cdr_from_json,
    cdrs_from_json,
    error_from_frame,
    iso_to_ms,
    ms_to_iso,
    safe_url,
)

__all__ = [
    "CLIENT_NAME",
    "CLOSE_GOING_AWAY",
    "CLOSE_UNAUTHORIZED",
    "DEFAULT_LIMIT",
    "HEARTBEAT_MISSES",
    "MAX_FRAME",
    "MAX_TRADERS",
    "CdrSource",
    "ServerInfo",
    "WbaBadRequest",
    "WbaBatch",
    "WbaClient",
    "WbaConnectionLost",
    "WbaCursorInvalid",
    "WbaEndpointRefused",
    "WbaError",
    "WbaProtocolError",
    "WbaTooManyTraders",
    "WbaUnauthorized",
    "WbaUnavailable",
    "cdr_from_json",
    "error_from_frame",
    "iso_to_ms",
    "ms_to_iso",
    "safe_url",
]

log = logging.getLogger(__name__)


class _NoFrameLogging(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every frame at DEBUG (the auth frame carries the token): report DEBUG off."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


# --- the client ------------------------------------------------------------------------------


class WbaClient:
    """A CdrSource for one WBA endpoint. One request in flight at a time (a lock serialises them).

    `token` is the token's value or a callable returning it (resolved at each connect, so a
    rotated token is picked up). `member` ("primary"/"secondary") only labels messages."""

    def __init__(
        self,
        url: str,
        token: str | Callable[[], str],
        *,
        collector: str,
        member: str = "primary",
        poll_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        heartbeat_misses: int = HEARTBEAT_MISSES,
        ssl: Any = None,
    ) -> None:
        if poll_timeout_s <= 0 or open_timeout_s <= 0 or heartbeat_misses < 1:
            raise ValueError("timeouts must be > 0 and heartbeat_misses >= 1")
        self.url = url
        self._token = token
        self.collector = collector
        self.member = member
        self.poll_timeout_s = poll_timeout_s
        self.open_timeout_s = open_timeout_s
        self.heartbeat_misses = heartbeat_misses
        self._ssl = ssl
        self.where = f"collector {collector} {member} ({safe_url(url)})"
        self.server: ServerInfo | None = None
        self.heartbeats = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._dead: WbaError | None = None
        self._notice: WbaError | None = None  # an error frame without id, explaining a close
        self._dead_after_s = poll_timeout_s
        self._guard = endpoints.HostGuard(allow_link_local=True)

    def __repr__(self) -> str:
        return f"WbaClient({self.where})"

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._dead is None and self.server is not None

    async def connect(self) -> None:
        """See CdrSource.connect. Also refuses (WbaTooManyTraders) a server reporting > 200 traders."""
        if self.connected:
            return
        await self.close()
        self._dead = self._notice = None
        self.server = None
        self._dead_after_s = self.open_timeout_s
        token = self._token() if callable(self._token) else self._token
        redact.register(token)
        try:
            endpoint = endpoints.check(self.url, "ws", allow_link_local=True, what=f"{self.where}'s endpoint")
            await self._guard.ensure(endpoint, what=f"{self.where}'s endpoint")
        except endpoints.EndpointRefused as refused:
            raise WbaEndpointRefused(
                f"refusing to connect: {refused.message}",
                next_step=refused.hint or "fix the CollectorTopology's endpoints",
            ) from None
        extra: dict[str, Any] = {"ssl": self._ssl} if self._ssl is not None else {}
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.open_timeout_s,
                ping_interval=None,  # liveness is the schema's heartbeat
                max_size=MAX_FRAME,
                max_queue=MAX_QUEUED_FRAMES,
                logger=_NoFrameLogging(log, {}),
                **extra,
            )
        except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
            raise WbaConnectionLost(
                f"{self.where}: cannot connect ({type(exc).__name__}: {redact.clip(str(exc), 200)})",
                next_step="check the endpoint is up and reachable; the collector retries and uses the HA partner",
            ) from None
        self._reader = asyncio.create_task(self._read(self._ws), name=f"wba-reader {self.where}")
        try:
            reply = await self._request({"type": "auth", "token": token, "client": CLIENT_NAME}, self.open_timeout_s)
            if reply.get("type") != "auth_ok":
                raise WbaProtocolError(f"{self.where}: auth answered with {redact.clip(str(reply.get('type')), 40)!r}")
            self.server = _server_info(reply)
        except BaseException:
            await self.close()
            raise
        if self.server.traders > MAX_TRADERS:
            await self.close()
            raise WbaTooManyTraders(
                f"{self.where}: the server has {self.server.traders} traders configured (at most {MAX_TRADERS})",
                next_step=_NEXT["too_many_traders"],
            )

    async def poll(self, cursor: str | None, since_ms: int | None, limit: int = DEFAULT_LIMIT) -> WbaBatch:
        """See CdrSource.poll. `limit` above the server's maxLimit is lowered to it; below 1 is a ValueError."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if self.server is None:
            raise WbaConnectionLost(f"{self.where}: not connected", next_step="connect first")
        asked = min(limit, self.server.max_limit)
        frame = {
            "type": "poll",
            "cursor": cursor,
            "since": None if since_ms is None else ms_to_iso(since_ms),
            "limit": asked,
        }
        reply = await self._request(frame, self.poll_timeout_s)
        if reply.get("type") != "cdrs" or not isinstance(reply.get("cdrs"), list):
            raise WbaProtocolError(f"{self.where}: poll answered with {redact.clip(str(reply.get('type')), 40)!r}")
        if not isinstance(reply.get("cursor"), str) or not isinstance(reply.get("more"), bool):
            raise WbaProtocolError(f"{self.where}: a cdrs answer without cursor/more")
        if len(reply["cdrs"]) > asked:
            raise WbaProtocolError(f"{self.where}: {len(reply['cdrs'])} CDRs answered to a poll for at most {asked}")
        checked = cdrs_from_json(reply["cdrs"], self.collector)
        return dataclasses.replace(checked, cursor=reply["cursor"], more=reply["more"])

    async def ping(self) -> int:
        """Round trip a ping; -> the server's time (epoch ms). Same errors as poll."""
        reply = await self._request({"type": "ping"}, self.poll_timeout_s)
        if reply.get("type") != "pong":
            raise WbaProtocolError(f"{self.where}: ping answered with {redact.clip(str(reply.get('type')), 40)!r}")
        return iso_to_ms(reply.get("time"), "pong time")

    async def close(self) -> None:
        """See CdrSource.close."""
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        self._fail_pending(self._dead or WbaConnectionLost(f"{self.where}: closed by the client"))

    async def _request(self, frame: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        async with self._lock:
            ws = self._ws
            if self._dead is not None or ws is None:
                raise self._dead or WbaConnectionLost(f"{self.where}: not connected", next_step="connect first")
            request_id = str(next(self._ids))
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = future
            try:
                await ws.send(json.dumps({**frame, "id": request_id}))
                reply = await asyncio.wait_for(future, timeout_s)
            except ConnectionClosed as closed:
                raise self._closed_error(closed) from None
            except TimeoutError:
                self._dead = WbaConnectionLost(
                    f"{self.where}: no answer to {frame['type']} within {timeout_s:g} s; treated as a dropped connection",
                    next_step="the collector reconnects or uses the HA partner",
                )
                await self.close()
                raise self._dead from None
            finally:
                self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            raise error_from_frame(reply, self.where)
        return reply

    async def _read(self, ws: ClientConnection) -> None:
        """Dispatch answers by id, count heartbeats; on silence or close, fail what is pending."""
        reason: WbaError
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self._dead_after_s)
            except TimeoutError:
                reason = WbaConnectionLost(
                    f"{self.where}: no frame for {self._dead_after_s:g} s ({self.heartbeat_misses} heartbeats "
                    "missed): the connection is dead",
                    next_step="the collector reconnects or uses the HA partner",
                )
                break
            except ConnectionClosed as closed:
                reason = self._closed_error(closed)
                break
            try:
                message = jsonsafe.loads(raw, what="a WBA frame", max_bytes=MAX_FRAME)
            except ValueError:
                log.warning("%s: ignored a frame that is not JSON", self.where)
                continue
            if not isinstance(message, dict):
                continue
            if message.get("type") == "heartbeat":
                self.heartbeats += 1
                continue
            if message.get("type") == "auth_ok":  # from now on, silence is measured in heartbeats
                self._dead_after_s = _server_info(message).heartbeat_s * self.heartbeat_misses
            future = self._pending.pop(str(message.get("id")), None) if message.get("id") is not None else None
            if future is not None and not future.done():
                future.set_result(message)
            elif message.get("type") == "error":
                self._notice = error_from_frame(message, self.where)
                log.warning("%s: server error %s", self.where, self._notice.message)
        self._dead = reason
        self._fail_pending(reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)

    def _fail_pending(self, error: WbaError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def _closed_error(self, closed: ConnectionClosed) -> WbaError:
        code = closed.rcvd.code if closed.rcvd else None
        if code == CLOSE_UNAUTHORIZED:
            return WbaUnauthorized(
                f"{self.where}: the server refused the token (close 4401)", next_step=_NEXT["unauthorized"]
            )
        if self._notice is not None:
            return self._notice
        what = "going away (4503): maintenance or failover" if code == CLOSE_GOING_AWAY else f"closed ({code})"
        return WbaConnectionLost(f"{self.where}: {what}", next_step="the collector reconnects or uses the HA partner")


def _server_info(reply: dict[str, Any]) -> ServerInfo:
    server = reply.get("server") if isinstance(reply.get("server"), dict) else {}
    assert isinstance(server, dict)
    beat, limit, traders = reply.get("heartbeatSeconds"), reply.get("maxLimit"), server.get("traders")
    return ServerInfo(
        name=str(server.get("name") or ""),
        role=str(server.get("role") or ""),
        switch=str(server.get("switch") or ""),
        traders=traders if isinstance(traders, int) and not isinstance(traders, bool) else 0,
        heartbeat_s=float(beat) if isinstance(beat, int | float) and not isinstance(beat, bool) and beat > 0 else 10.0,
        max_limit=limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 5000,
    )
