"""Market-data feed adapters: one request (two for an expired Refinitiv token) per snapshot.

Each adapter speaks one wire dialect over the feed's single shared `httpx.AsyncClient` and
turns the answer into a `Snapshot`:
`{"timestamp_utc": <feed timestamp, ISO-8601 UTC with Z>, "source_provider": <provider>,
<instrument.as_>: <value of instrument.field for instrument.symbol>, ...}`.

- generic-rest (and ice): `GET url?symbols=S1,S2&fields=F1,F2` (optional Bearer token) →
  `{"timestamp", "data": {S: {F: value}}}`.
- bloomberg (BLPAPI reference data over HTTP): `POST url {"securities", "fields"}` →
  `{"status": 0, "timestamp", "data": [{"security", "fieldData", "securityError"?,
  "fieldExceptions"?}], "responseError"?}`. Success is not the HTTP status: a responseError,
  any securityError, a fieldException for a field we need from that security, or status ≠ 0
  is a failure.
- refinitiv (RDP): a client-credentials token (`TokenSource`: cached, refreshed ahead of
  expiry in the background, one request for any number of concurrent fetches, and a budget
  well under LSEG's 50 token requests a minute) and `GET url?universe=...&fields=...` →
  `{"timestamp", "headers": [{"name"}], "data": [[instrument, v1, v2, ...]]}`. A 401 refreshes
  the token once and retries once.

Any failure (transport, non-2xx, bad JSON, a symbol or field missing or null, a provider error)
raises `FeedError`; the fetcher turns it into `status: data_fetch_failed`.

What a feed sends is bounded and cleaned: a body is read up to MAX_BODY bytes (after
decompression; more is a failure, not a bigger buffer) and parsed with reconciler.jsonsafe;
text from the feed in a message (a Bloomberg responseError) is scrubbed of every secret recon
holds before it is clipped (reconciler.redact); a value that carries one of those secrets is
refused, so a feed cannot make recon attach a credential to a call. Tokens are registered
for redaction when resolved or received. Requests go only to the feed's own URL (the
endpoint policy of reconciler.endpoints, checked again against DNS before the first request
to a host name); the Refinitiv token endpoint is on the same origin as the feed. Adapters set no
deadline of their own beyond httpx's backstop: the fetcher's hard timeout bounds every call.
Query strings are comma-joined and percent-encoded, keeping `/` and `.` literal
(`symbols=EUR/USD,RDSa.L`); any standard query parser reads them back unchanged.

Called by: reconciler.runtime.snapshot.fetcher (`SnapshotFetcher`, `open_fetcher`).
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from reconciler import endpoints, jsonsafe, redact
from reconciler.runtime.snapshot.feedconfig import (
    FeedConfigError,
    FeedError,
    FeedSettings,
    InstrumentRef,
    JsonScalar,
    Resolve,
    Snapshot,
    open_client,
)

TOKEN_PATH = "/auth/oauth2/v1/token"
TOKEN_REFRESH_MARGIN = 30.0
"""Seconds before expiry at which a Refinitiv token is refreshed (in the background)."""
TOKEN_BUDGET_PER_MINUTE = 30
"""Token requests allowed in any 60 s; LSEG's DoS controls trip above 50."""
TOKEN_TIMEOUT_S = 10.0
"""A token request runs on even when the fetch that started it times out; this bounds it."""
_DETAIL_LIMIT = 200
MAX_BODY = 2 * 2**20
"""Largest feed answer read: a snapshot of a few hundred instruments is tens of KB."""

MAX_TOKEN_LIFETIME_S = 366 * 86_400
"""The longest token lifetime believed (a server's expires_in of 10**400 or inf would overflow
or never refresh)."""


class FeedAdapter(ABC):
    """One feed's wire dialect. Owns the feed's shared client; `aclose` closes it."""

    def __init__(
        self,
        settings: FeedSettings,
        client: httpx.AsyncClient,
        *,
        bearer: str | None = None,
        guard: endpoints.HostGuard | None = None,
    ) -> None:
        self.settings = settings
        self.provider: str = settings.provider
        self._client = client
        self._bearer = bearer
        redact.register(bearer)
        self._guard = guard
        """DNS checks before requests (None: an injected transport, no network)."""
        self.requests = 0
        """HTTP requests sent for snapshots (token requests are counted by the token source)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(feed={self.settings.name!r}, url={self.settings.url!r})"

    @abstractmethod
    async def fetch(self, instruments: Sequence[InstrumentRef]) -> Snapshot:
        """A snapshot of `instruments`, or `FeedError`."""

    async def aclose(self) -> None:
        await self._client.aclose()

    def _auth(self, token: str | None = None) -> dict[str, str]:
        token = token or self._bearer
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def _send(self, request: httpx.Request) -> Body:
        self.requests += 1
        return await send(self._client, request, guard=self._guard, settings=self.settings)


class GenericRestAdapter(FeedAdapter):
    """`generic-rest` and `ice`: one GET, values under `data[symbol][field]`."""

    async def fetch(self, instruments: Sequence[InstrumentRef]) -> Snapshot:
        url = with_query(
            self.settings.url,
            symbols=unique(i.symbol for i in instruments),
            fields=unique(i.field for i in instruments),
        )
        response = await self._send(self._client.build_request("GET", url, headers=self._auth()))
        body = json_object(response)
        data = body.get("data")
        if not isinstance(data, dict):
            raise FeedError("bad response", "the body has no 'data' object")
        values: dict[str, Any] = {}
        for instrument in instruments:
            row = data.get(instrument.symbol)
            values[instrument.as_] = row.get(instrument.field) if isinstance(row, dict) else None
        return snapshot(self.provider, body.get("timestamp"), instruments, values)


class BloombergAdapter(FeedAdapter):
    """`bloomberg`: one POST; errors inside a `status: 0` body are failures."""

    async def fetch(self, instruments: Sequence[InstrumentRef]) -> Snapshot:
        payload = {
            "securities": unique(i.symbol for i in instruments),
            "fields": unique(i.field for i in instruments),
        }
        request = self._client.build_request("POST", self.settings.url, json=payload, headers=self._auth())
        body = json_object(await self._send(request))
        status = body.get("status")
        if status != 0 or isinstance(status, bool):
            raise FeedError("provider error", f"the response status is {clip(repr(status))}, not 0")
        if body.get("responseError"):
            raise FeedError("provider error", f"responseError: {error_text(body['responseError'])}")
        data = body.get("data")
        if not isinstance(data, list):
            raise FeedError("bad response", "the body has no 'data' list")
        needed: dict[str, set[str]] = {}
        for instrument in instruments:
            needed.setdefault(instrument.symbol, set()).add(instrument.field)
        field_data: dict[str, dict[str, Any]] = {}
        for entry in data:
            if not isinstance(entry, dict) or not isinstance(entry.get("security"), str):
                raise FeedError("bad response", "a 'data' entry has no 'security'")
            security: str = entry["security"]
            if entry.get("securityError"):
                raise FeedError(
                    "provider error", f"securityError for {clip(security)}: {error_text(entry['securityError'])}"
                )
            for exception in entry.get("fieldExceptions") or []:
                field_id = exception.get("fieldId") if isinstance(exception, dict) else None
                if field_id in needed.get(security, ()):
                    info = exception.get("errorInfo")
                    raise FeedError(
                        "provider error",
                        f"fieldException for {clip(security)} {clip(str(field_id))}: {error_text(info)}",
                    )
            found = entry.get("fieldData")
            field_data[security] = found if isinstance(found, dict) else {}
        values = {i.as_: field_data.get(i.symbol, {}).get(i.field) for i in instruments}
        return snapshot(self.provider, body.get("timestamp"), instruments, values)


class TokenSource:
    """Refinitiv client-credentials tokens: cached, refreshed `margin` seconds before expiry in
    the background while the current token still serves, fetched once for any number of
    concurrent callers, and never more than `budget_per_minute` requests in any 60 s."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin: float = TOKEN_REFRESH_MARGIN,
        budget_per_minute: int = TOKEN_BUDGET_PER_MINUTE,
        guard: endpoints.HostGuard | None = None,
        settings: FeedSettings | None = None,
    ) -> None:
        redact.register(client_secret)
        self._guard, self._settings = guard, settings
        self._client = client
        self._url = token_url
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        self._clock = clock
        self._margin = margin
        self._budget = budget_per_minute
        self._sent: deque[float] = deque()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._inflight: asyncio.Task[None] | None = None
        self.requests = 0
        """Token requests sent."""

    def __repr__(self) -> str:
        return f"TokenSource(url={self._url!r}, client_id={self._form['client_id']!r})"

    async def token(self) -> str:
        """A valid token; waits only when none is held (first use, expiry, after a 401)."""
        now = self._clock()
        held = self._token
        if held is not None and now < self._expires_at:
            if now >= self._refresh_at:
                self._start_refresh()
            return held
        task = self._start_refresh()
        if task is None:
            raise FeedError("auth", f"token request budget ({self._budget} a minute) used up; not asking again yet")
        await asyncio.shield(task)  # a timed-out fetch does not cancel the request others wait for
        if self._token is None:
            raise FeedError("auth", "the token request returned no token")
        return self._token

    def invalidate(self, stale: str) -> None:
        """Forget `stale` (the feed refused it) unless a newer token has replaced it already."""
        if self._token == stale:
            self._token = None
            self._expires_at = self._refresh_at = 0.0

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()

    def _start_refresh(self) -> asyncio.Task[None] | None:
        if self._inflight is not None:
            return self._inflight
        now = self._clock()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if len(self._sent) >= self._budget:
            return None
        self._sent.append(now)
        task = asyncio.get_running_loop().create_task(self._request(now))
        self._inflight = task
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, raised to the waiters through shield

    async def _request(self, started: float) -> None:
        self.requests += 1
        request = self._client.build_request(
            "POST", self._url, data=self._form, headers={"Accept": "application/json"}, timeout=TOKEN_TIMEOUT_S
        )
        response = await send(
            self._client, request, what="the token request", guard=self._guard, settings=self._settings
        )
        if response.status_code in (400, 401, 403):
            raise FeedError("auth", f"the token request was refused (HTTP {response.status_code})")
        body = json_object(response, what="the token response")
        token = body.get("access_token")
        lifetime = body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise FeedError("auth", "the token response has no access_token")
        redact.register(token)
        if isinstance(lifetime, str) and lifetime.isascii() and lifetime.isdigit() and len(lifetime) <= 9:
            lifetime = int(lifetime)  # ASCII digits only: "²".isdigit() is true, int("²") fails
        if (
            not isinstance(lifetime, int | float)
            or isinstance(lifetime, bool)
            or not 0 < lifetime <= MAX_TOKEN_LIFETIME_S
        ):
            raise FeedError("auth", f"the token response has no expires_in from 1 to {MAX_TOKEN_LIFETIME_S} seconds")
        self._token = token
        self._expires_at = started + lifetime
        self._refresh_at = self._expires_at - min(self._margin, lifetime / 2)


class RefinitivAdapter(FeedAdapter):
    """`refinitiv`: Bearer token from `TokenSource`, one GET, a header row naming the columns."""

    def __init__(
        self,
        settings: FeedSettings,
        client: httpx.AsyncClient,
        tokens: TokenSource,
        *,
        guard: endpoints.HostGuard | None = None,
    ) -> None:
        super().__init__(settings, client, guard=guard)
        self.tokens = tokens

    async def aclose(self) -> None:
        await self.tokens.aclose()
        await super().aclose()

    async def fetch(self, instruments: Sequence[InstrumentRef]) -> Snapshot:
        url = with_query(
            self.settings.url,
            universe=unique(i.symbol for i in instruments),
            fields=unique(i.field for i in instruments),
        )
        token = await self.tokens.token()
        response = await self._send(self._client.build_request("GET", url, headers=self._auth(token)))
        if response.status_code == 401:
            self.tokens.invalidate(token)
            token = await self.tokens.token()
            response = await self._send(self._client.build_request("GET", url, headers=self._auth(token)))
            if response.status_code == 401:
                raise FeedError("auth", "HTTP 401 again after a token refresh")
        body = json_object(response)
        headers, rows = body.get("headers"), body.get("data")
        if not isinstance(headers, list) or not isinstance(rows, list):
            raise FeedError("bad response", "the body has no 'headers' and 'data' lists")
        names = [h.get("name") if isinstance(h, dict) else None for h in headers]
        if "instrument" not in names:
            raise FeedError("bad response", "no 'instrument' column in 'headers'")
        key = names.index("instrument")
        columns = {name: index for index, name in enumerate(names) if isinstance(name, str)}
        by_instrument = {
            row[key]: row
            for row in rows
            if isinstance(row, list) and len(row) == len(names) and isinstance(row[key], str)
        }
        values: dict[str, Any] = {}
        for instrument in instruments:
            row = by_instrument.get(instrument.symbol)
            column = columns.get(instrument.field)
            values[instrument.as_] = row[column] if row is not None and column is not None else None
        return snapshot(self.provider, body.get("timestamp"), instruments, values)


def build_adapter(
    settings: FeedSettings,
    resolve: Resolve,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FeedAdapter:
    """The adapter for `settings.provider`, with its own client (mTLS as configured). Secrets
    are resolved now, at startup; rotating one needs a restart of the runtime."""
    settings.check()
    client = open_client(settings, resolve, transport=transport)
    guard = endpoints.HostGuard(allow_link_local=settings.allow_link_local) if transport is None else None
    bearer = resolve(settings.token) if settings.token else None
    if settings.provider == "bloomberg":
        return BloombergAdapter(settings, client, bearer=bearer, guard=guard)
    if settings.provider == "refinitiv":
        if not settings.client_id or not settings.client_secret:
            raise FeedConfigError(
                f"feed {settings.name}: refinitiv needs credentials.clientId and credentials.clientSecret",
                next_step="add both to the MarketDataFeed's credentials",
            )
        origin = httpx.URL(settings.url)
        token_url = f"{origin.scheme}://{origin.netloc.decode('ascii')}{TOKEN_PATH}"
        tokens = TokenSource(
            client,
            token_url,
            settings.client_id,
            resolve(settings.client_secret),
            clock=clock,
            guard=guard,
            settings=settings,
        )
        return RefinitivAdapter(settings, client, tokens, guard=guard)
    return GenericRestAdapter(settings, client, bearer=bearer, guard=guard)


# -- shared wire helpers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Body:
    """A feed's answer, read whole within MAX_BODY."""

    status_code: int
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    what: str = "the feed",
    guard: endpoints.HostGuard | None = None,
    settings: FeedSettings | None = None,
) -> Body:
    """Send and read the answer (at most MAX_BODY bytes), turning transport trouble into
    `FeedError` (the exception type only: no URL credentials or bodies in messages). With a
    `guard`, the host is checked against DNS first (see reconciler.endpoints.HostGuard)."""
    if guard is not None and settings is not None:
        try:
            await guard.ensure(settings.endpoint(), what=f"feed {settings.name}'s URL")
        except endpoints.EndpointRefused as refused:
            raise FeedError("transport", refused.message) from None
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise FeedError("transport", f"{what} timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise FeedError("transport", f"{what} could not be reached ({type(exc).__name__})") from None
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise FeedError("bad response", f"{what} announced {int(declared):,} bytes, over the limit of {MAX_BODY:,}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY:
                raise FeedError("bad response", f"{what} sent more than {MAX_BODY:,} bytes, the limit")
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise FeedError("transport", f"{what} timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise FeedError("transport", f"{what} broke off its answer ({type(exc).__name__})") from None
    finally:
        await response.aclose()
    return Body(response.status_code, b"".join(chunks))


def json_object(response: Body, *, what: str = "the feed's response") -> dict[str, Any]:
    """The body as a JSON object, after a 2xx status; otherwise `FeedError`."""
    if not 300 > response.status_code >= 200:
        raise FeedError("http status", f"{what}: HTTP {response.status_code}")
    try:
        body = jsonsafe.loads(response.content, what=what, max_bytes=MAX_BODY)
    except ValueError:
        raise FeedError("bad response", f"{what} is not valid JSON") from None
    if not isinstance(body, dict):
        raise FeedError("bad response", f"{what} is not a JSON object")
    return body


def with_query(url: str, **params: list[str]) -> httpx.URL:
    """`url` with `name=v1,v2` appended per param; `/` and `.` stay literal."""
    base = httpx.URL(url)
    parts = [base.query.decode("ascii")] if base.query else []
    parts += [f"{name}={','.join(quote(v, safe='/') for v in values)}" for name, values in params.items()]
    return base.copy_with(query="&".join(parts).encode("ascii"))


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def normalise_timestamp(value: object) -> str:
    """An ISO-8601 timestamp with an offset, as UTC with `Z` (milliseconds kept, microseconds
    when present); `FeedError` if absent, unparseable or without an offset."""
    if not isinstance(value, str) or not value:
        raise FeedError("bad response", "the response has no timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FeedError("bad response", f"timestamp {clip(value)!r} is not ISO-8601") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FeedError("bad response", f"timestamp {clip(value)!r} has no UTC offset")
    spec = "milliseconds" if parsed.microsecond % 1000 == 0 else "microseconds"
    return parsed.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def snapshot(
    provider: str, timestamp: object, instruments: Sequence[InstrumentRef], values: dict[str, Any]
) -> Snapshot:
    """The snapshot, or `FeedError` naming the first instrument whose value is missing or not a
    number or string (null, a boolean, an object, a list, NaN or infinity), as the guard
    (`reconciler.runtime.snapshot.guard`) would also refuse."""
    result: Snapshot = {"timestamp_utc": normalise_timestamp(timestamp), "source_provider": provider}
    for instrument in instruments:
        value = values.get(instrument.as_)
        if value is None:
            raise FeedError("missing data", f"no {clip(instrument.field)} for {clip(instrument.symbol)}")
        bad_number = isinstance(value, float) and not math.isfinite(value)
        if isinstance(value, bool) or not isinstance(value, JsonScalar) or bad_number:
            raise FeedError(
                "bad response", f"{clip(instrument.field)} for {clip(instrument.symbol)} is not a number or string"
            )
        if isinstance(value, str) and redact.holds(value):
            raise FeedError(
                "bad response",
                f"{clip(instrument.field)} for {clip(instrument.symbol)} carries a credential recon holds; not attached",
            )
        result[instrument.as_] = value
    return result


def error_text(error: object) -> str:
    """`category: message` of a Bloomberg error object, clipped."""
    if isinstance(error, dict):
        parts = [str(error[k]) for k in ("category", "message") if error.get(k)]
        return clip(": ".join(parts) or "no detail")
    return clip(str(error))


def clip(text: str) -> str:
    """Text from the feed, fit for a message: scrubbed of secrets first, then clipped."""
    return redact.clip(text, _DETAIL_LIMIT)
