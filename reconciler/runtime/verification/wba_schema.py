"""The TradeSense WBA message schema of docs/wba-protocol.md, as data: the error tree, the CDR
batch, the `CdrSource` Protocol the collector sees, and the JSON <-> model conversions.

Together with reconciler.runtime.verification.wba (the websocket client) this is the one
adapter that knows the wire format: a mapping to the real WBA replaces these two modules.

Called by: reconciler.runtime.verification.wba and .collector, tests.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from reconciler import redact
from reconciler.errors import ReconError
from reconciler.runtime.verification.cdr_check import CdrRejection, parse_cdr
from reconciler.runtime.verification.model import Cdr

CLIENT_NAME = "recon/0.1"
MAX_TRADERS = 200
"""A TradeSense server serves at most 200 traders; more need one collector per server."""
DEFAULT_LIMIT = 1000
HEARTBEAT_MISSES = 3
MAX_FRAME = 32 * 2**20
"""A 5,000-CDR answer is a few MB; websockets' 1 MiB default is too small."""
MAX_QUEUED_FRAMES = 4
"""Frames websockets buffers before it stops reading the socket: at most 4 x MAX_FRAME held."""
CLOSE_UNAUTHORIZED = 4401
CLOSE_GOING_AWAY = 4503
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


# --- errors ---------------------------------------------------------------------------------


class WbaError(ReconError):
    """A WBA request or connection failed. `code` is the schema's error code (or `connection`,
    `protocol`); messages name the endpoint and the next step, never the token."""

    code = "error"

    def __init__(self, message: str, *, next_step: str = "", retry_after_ms: int | None = None) -> None:
        super().__init__(message, next_step=next_step)
        self.retry_after_ms = retry_after_ms


class WbaUnauthorized(WbaError):
    code = "unauthorized"


class WbaBadRequest(WbaError):
    code = "bad_request"


class WbaCursorInvalid(WbaError):
    code = "cursor_invalid"


class WbaTooManyTraders(WbaError):
    code = "too_many_traders"


class WbaUnavailable(WbaError):
    code = "unavailable"


class WbaConnectionLost(WbaError):
    """Unreachable, closed (4503 going away included), heartbeats missed, or a request timed out."""

    code = "connection"


class WbaProtocolError(WbaError):
    """The server sent something the schema does not allow (a frame, a CDR)."""

    code = "protocol"


class WbaEndpointRefused(WbaError):
    """The endpoint is one recon never connects to (reconciler.endpoints): plain ws:// to a
    remote host, a cloud metadata or unspecified address, or a name resolving to one."""

    code = "endpoint_refused"


_NEXT = {
    "unauthorized": "check the collector's token (a TradeSense API user token); it is not retried until it changes",
    "bad_request": "a bug in recon's WBA adapter: report it with the message",
    "cursor_invalid": "poll again with `since` (the collector does this itself)",
    "too_many_traders": "split the TradeSense server: at most 200 traders per server, one collector each",
    "unavailable": "retry after retryAfterMs, or use the HA partner",
}
_ERRORS: dict[str, type[WbaError]] = {
    cls.code: cls for cls in (WbaUnauthorized, WbaBadRequest, WbaCursorInvalid, WbaTooManyTraders, WbaUnavailable)
}


def error_from_frame(frame: dict[str, Any], where: str) -> WbaError:
    """The exception an `error` frame stands for (an unknown code is a plain WbaError). The
    server's message is scrubbed of every secret recon holds (a server may echo the token it
    refuses) before it is clipped."""
    code = str(frame.get("code") or "error")
    retry = frame.get("retryAfterMs")
    retry_ms = int(retry) if isinstance(retry, int | float) and not isinstance(retry, bool) and retry >= 0 else None
    message = redact.clip(" ".join(str(frame.get("message") or code).split()), 500)
    code = redact.clip(code, 40)
    cls = _ERRORS.get(code, WbaError)
    return cls(f"{where}: {code}: {message}", next_step=_NEXT.get(code, ""), retry_after_ms=retry_ms)


# --- the contract the collector uses ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WbaBatch:
    """One poll's answer. `reported_at_ms[i]` is when the server wrote `cdrs[i]` (its `reportedAt`)."""

    cdrs: list[Cdr]
    cursor: str
    more: bool
    reported_at_ms: list[int] = field(default_factory=list)
    rejected: list[CdrRejection] = field(default_factory=list)
    """CDRs of the answer that failed the checks (reconciler.runtime.verification.cdr_check)."""

    @property
    def high_water_ms(self) -> int | None:
        """The latest `reportedAt` in the batch (None when empty)."""
        return max(self.reported_at_ms, default=None)


class CdrSource(Protocol):
    """One endpoint CDRs are read from (what the collector needs of an adapter)."""

    async def connect(self) -> None:
        """Open and authenticate. Idempotent while connected. Raises WbaConnectionLost (unreachable),
        WbaUnauthorized, WbaTooManyTraders, WbaUnavailable. No other side effect."""
        ...

    async def poll(self, cursor: str | None, since_ms: int | None, limit: int) -> WbaBatch:
        """Up to `limit` CDRs after `cursor` (this server's, from an earlier answer) or, with no cursor,
        reported at or after `since_ms` (epoch ms; None: the oldest retained). Reads only: asking
        twice with the same arguments returns the same CDRs. Raises WbaCursorInvalid (poll again
        with since), WbaUnavailable, WbaConnectionLost (also on timeout; the source is then
        closed), WbaBadRequest, WbaTooManyTraders, WbaUnauthorized, WbaProtocolError."""
        ...

    async def close(self) -> None:
        """Close the connection. Idempotent; never raises."""
        ...


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What `auth_ok` says about the server."""

    name: str
    role: str
    switch: str
    traders: int
    heartbeat_s: float
    max_limit: int


# --- JSON <-> model ----------------------------------------------------------------------------


def iso_to_ms(value: Any, what: str = "time") -> int:
    """Epoch ms of a schema time (`2026-11-21T09:59:01.250Z`; no zone means UTC), exactly."""
    if not isinstance(value, str):
        raise WbaProtocolError(f"{what} is not a time: {value!r}")
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise WbaProtocolError(f"{what} is not an ISO time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MS


def ms_to_iso(epoch_ms: int) -> str:
    """The schema's time text for epoch ms: UTC, milliseconds, `Z`."""
    moment = _EPOCH + dt.timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cdr_from_json(item: Any, collector: str, now_ms: int | None = None) -> tuple[Cdr, int]:
    """(Cdr, reportedAt ms) of one CDR object whose every field passes the checks of
    reconciler.runtime.verification.cdr_check; WbaProtocolError saying what is wrong otherwise."""
    parsed = parse_cdr(item, collector, _now_ms() if now_ms is None else now_ms)
    if isinstance(parsed, CdrRejection):
        raise WbaProtocolError(parsed.detail)
    return parsed


def cdrs_from_json(items: list[Any], collector: str, now_ms: int | None = None) -> WbaBatch:
    """The CDRs of one `cdrs` answer, each checked: the good ones with their reportedAt, the
    others as rejections (a bad CDR is reported, never dropped, and does not fail the poll).
    The batch's cursor is filled in by the caller."""
    now = _now_ms() if now_ms is None else now_ms
    cdrs: list[Cdr] = []
    reported: list[int] = []
    rejected: list[CdrRejection] = []
    for item in items:
        parsed = parse_cdr(item, collector, now)
        if isinstance(parsed, CdrRejection):
            rejected.append(parsed)
        else:
            cdrs.append(parsed[0])
            reported.append(parsed[1])
    return WbaBatch(cdrs, "", False, reported, rejected)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def safe_url(url: str) -> str:
    """`url` without user info, query or fragment (what logs and alerts may show)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
