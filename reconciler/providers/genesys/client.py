"""The Genesys Cloud Platform API v2 client: async httpx with auth, throttling, retries, paging.

One `GenesysClient` per org and set of credentials. Every request first takes a token from
the shared rate limiter (`TokenBucket`), then carries a cached OAuth bearer token
(`TokenSource`). Failures are handled in one loop (`request`):

- 429: wait `Retry-After` seconds (header; else 1 s) plus up to 0.5 s jitter, retry;
- 5xx except 501, timeouts, connection errors: exponential backoff with jitter, retry;
- after `max_retries` retries: RateLimitedError / ServerError (both retryable later);
- 401: drop the token, fetch a new one and retry once; a second 401 is AuthenticationError;
- 403, 404, 501 and other 4xx: the mapped error at once (see `errors.py`), no retry.

API requests go through httpx, or through a `Sender` when one is given (the runtime's
`transport.PooledSender`, aiohttp: a fifth of the CPU per request); token fetches always use
httpx. The loop above is the same for both.

Where credentials go: the client secret only to the login host (auth.py), the bearer token
only to the API host. Both base URLs must pass reconciler.endpoints (https, or http on
loopback; never a metadata or unspecified address) when the client is built, and their host
names are checked against DNS before the first request (`endpoints.HostGuard`, on a real
network). Every request path is made relative to the API base (a `nextUri` cannot name
another host), redirects are never followed (a 3xx is an error), no cookie is kept, and a
plain-http (loopback) request never goes through an environment proxy. Bodies are read
within `replies.MAX_RESPONSE_BYTES` and parsed with reconciler.jsonsafe.

`paginate` walks `{entities, pageNumber, pageCount, nextUri}` pages; `paginate_cursor` walks
cursor-paged endpoints. `requests` counts every HTTP request sent, token fetches included
(`token_requests` counts those alone), for --verbose output and benchmarks.

Called by: the Genesys providers (queues, retention policies, recording settings ...) and
the sandbox's conformance tests.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

import httpx

from reconciler import endpoints as policy
from reconciler.providers.genesys.auth import ClientCredentials, TokenSource
from reconciler.providers.genesys.errors import (
    AuthenticationError,
    GenesysError,
    RateLimitedError,
    ResponseError,
    ServerError,
    error_for_response,
)
from reconciler.providers.genesys.paging import entities_of, int_field, page_size_for, path_only, relative_uri
from reconciler.providers.genesys.ratelimit import DEFAULT_BURST, TokenBucket
from reconciler.providers.genesys.regions import Endpoints
from reconciler.providers.genesys.replies import read_httpx

Params = Mapping[str, str | int | float | bool | list[str]]

RETRY_AFTER_DEFAULT = 1.0
"""Seconds to wait after a 429 without a usable Retry-After header."""
RETRY_AFTER_CAP = 300.0
"""Longest Retry-After honoured; a larger value is clamped to this."""
RATE_LIMIT_JITTER = 0.5
"""Up to this many seconds are added to each Retry-After wait so clients do not retry in step."""
BACKOFF_BASE = 0.5
"""First backoff delay (seconds) after a 5xx or transport error; doubles each retry."""
BACKOFF_CAP = 30.0
USER_AGENT = "recon (recording compliance as code)"


class Reply(Protocol):
    """What the request loop reads of a response (httpx.Response is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    def json(self) -> Any: ...


class Sender(Protocol):
    """Another HTTP engine for API requests (`transport.PooledSender`): sends one request and
    returns its complete reply; raises httpx.TransportError subclasses for connection
    problems. No retries, auth or throttling of its own: the request loop does those."""

    async def send(
        self, method: str, url: str, *, params: Params | None, json: Any, headers: Mapping[str, str]
    ) -> Reply: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What builds an equivalent client in another process (the runtime's platform writer,
    reconciler.runtime.snapshot.attach_worker). Holds the client secret: never log or store it."""

    login_base: str
    api_base: str
    client_id: str
    client_secret: str = field(repr=False)
    rate_per_minute: float = 300
    burst: int = DEFAULT_BURST
    max_retries: int = 5
    timeout: float = 30.0
    allow_link_local: bool = False


def checked_endpoint(url: str, what: str, *, allow_link_local: bool) -> policy.Endpoint:
    """`url` as reconciler.endpoints accepts it, or a GenesysError saying why not."""
    try:
        return policy.check(url, "http", allow_link_local=allow_link_local, what=what)
    except policy.EndpointRefused as refused:
        raise GenesysError(
            f"refusing to use {refused.message}", next_step=refused.hint or "fix the target's apiUrl / loginUrl"
        ) from None


def no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing: no cookie set by one host is ever sent to another."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class GenesysClient:
    """Async client for one Genesys Cloud org. Use `async with` or call `aclose()`."""

    def __init__(
        self,
        endpoints: Endpoints,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sender: Sender | None = None,
        rate_per_minute: float = 300,
        burst: int = DEFAULT_BURST,
        max_retries: int = 5,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        allow_link_local: bool = False,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._api = checked_endpoint(endpoints.api_base, "the Genesys API URL", allow_link_local=allow_link_local)
        self._login = checked_endpoint(endpoints.login_base, "the Genesys login URL", allow_link_local=allow_link_local)
        self.endpoints = endpoints
        self.max_retries = max_retries
        self._sleep = sleep
        self._rng = rng
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
            cookies=no_cookies(),
            mounts={"http://": None},  # plain http is loopback only: never through a proxy
        )
        self._guard = policy.HostGuard(allow_link_local=allow_link_local) if transport is None else None
        """DNS checks of the two hosts, on a real network only (an injected transport has no DNS)."""
        self._sender = sender
        """API requests go here when set (token fetches always use httpx: a few an hour)."""
        self._auth = TokenSource(
            endpoints.login_base, ClientCredentials(client_id, client_secret), self._http, clock=clock
        )
        self.limiter = TokenBucket(rate_per_minute, burst, clock=clock, sleep=sleep)
        self._settings = ClientSettings(
            endpoints.login_base,
            endpoints.api_base,
            client_id,
            client_secret,
            rate_per_minute,
            burst,
            max_retries,
            timeout,
            allow_link_local,
        )
        self._api_requests = 0
        self.retries = 0
        """How many requests were repeated after a 429, 5xx, transport error or 401."""

    def __repr__(self) -> str:
        return f"GenesysClient(api_base={self.endpoints.api_base!r}, client_id={self._auth.client_id!r})"

    @classmethod
    def from_settings(cls, settings: ClientSettings, *, sender: Sender | None = None) -> GenesysClient:
        """A client like the one `settings()` was read from (its own token, pool and limiter)."""
        return cls(
            Endpoints(settings.login_base, settings.api_base),
            settings.client_id,
            settings.client_secret,
            sender=sender,
            rate_per_minute=settings.rate_per_minute,
            burst=settings.burst,
            max_retries=settings.max_retries,
            timeout=settings.timeout,
            allow_link_local=settings.allow_link_local,
        )

    def settings(self) -> ClientSettings:
        """How this client was built (the secret included: see ClientSettings)."""
        return self._settings

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, token fetches included."""
        return self._api_requests + self._auth.fetches

    @property
    def token_requests(self) -> int:
        return self._auth.fetches

    async def __aenter__(self) -> GenesysClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Safe to call twice."""
        await self._http.aclose()
        if self._sender is not None:
            await self._sender.aclose()

    # -- verbs -------------------------------------------------------------------------

    async def get(self, path: str, params: Params | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any = None, params: Params | None = None) -> Any:
        return await self.request("POST", path, json=json, params=params)

    async def put(self, path: str, json: Any = None, params: Params | None = None) -> Any:
        return await self.request("PUT", path, json=json, params=params)

    async def patch(self, path: str, json: Any = None, params: Params | None = None) -> Any:
        return await self.request("PATCH", path, json=json, params=params)

    async def delete(self, path: str, params: Params | None = None) -> Any:
        return await self.request("DELETE", path, params=params)

    # -- the request loop --------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        """Send one API call with throttling, auth and retries; return the decoded JSON body
        (None for an empty body). `path` is relative to the API base and may carry a query."""
        endpoint = f"{method} {path_only(path)}"
        relative = relative_uri(path)
        if not relative.startswith("/"):  # "@evil.example/x" appended to the base would name another host
            relative = "/" + relative
        url = self.endpoints.api_base + relative
        attempt = 0
        refreshed = False
        if self._guard is not None:
            await self._check_hosts()
        while True:
            await self.limiter.acquire()
            try:
                token = await self._auth.token()
            except (RateLimitedError, ServerError):
                if attempt >= self.max_retries:
                    raise
                await self._backoff(attempt)
                attempt += 1
                continue
            self._api_requests += 1
            try:
                headers = {"Authorization": f"Bearer {token}"}
                response: Reply
                if self._sender is not None:
                    response = await self._sender.send(method, url, params=params, json=json, headers=headers)
                else:
                    request = self._http.build_request(method, url, params=params, json=json, headers=headers)
                    response = await read_httpx(await self._http.send(request, stream=True), endpoint)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise ServerError(
                        f"Genesys Cloud {endpoint} failed after {attempt + 1} attempts: {type(exc).__name__}",
                        endpoint=endpoint,
                        next_step="check network access to the API host and run again",
                        retryable=True,
                    ) from None
                await self._backoff(attempt)
                attempt += 1
                continue
            status = response.status_code
            if 300 <= status < 400:
                raise ResponseError(
                    endpoint=endpoint,
                    status=status,
                    problem=f"a redirect (HTTP {status}), which recon does not follow with the token; "
                    "set apiUrl to the API host itself",
                )
            if status < 400:
                return self._decode(response, endpoint)
            if status == 401:
                if refreshed:
                    raise AuthenticationError(endpoint=endpoint, status=status)
                refreshed = True
                self.retries += 1
                await self._auth.invalidate(token)
                continue
            retryable = status == 429 or (status >= 500 and status != 501)
            if not retryable or attempt >= self.max_retries:
                raise error_for_response(endpoint, status, response.content, after_retries=attempt)
            if status == 429:
                self.retries += 1
                await self._sleep(self._retry_after(response) + self._rng() * RATE_LIMIT_JITTER)
            else:
                await self._backoff(attempt)
            attempt += 1

    async def _check_hosts(self) -> None:
        """The DNS half of the endpoint policy for both hosts (cached by the guard)."""
        assert self._guard is not None
        try:
            await self._guard.ensure(self._api, "the Genesys API URL")
            await self._guard.ensure(self._login, "the Genesys login URL")
        except policy.EndpointRefused as refused:
            raise GenesysError(
                f"refusing to use {refused.message}", next_step="fix the target's apiUrl / loginUrl"
            ) from None

    async def _backoff(self, attempt: int) -> None:
        self.retries += 1
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) + self._rng() * BACKOFF_BASE
        await self._sleep(delay)

    @staticmethod
    def _retry_after(response: Reply) -> float:
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                return min(RETRY_AFTER_CAP, max(0.0, float(header)))
            except ValueError:
                pass  # an HTTP-date or garbage: fall back
        return RETRY_AFTER_DEFAULT

    @staticmethod
    def _decode(response: Reply, endpoint: str) -> Any:
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise ResponseError(
                endpoint=endpoint, status=response.status_code, problem="body is not valid JSON"
            ) from None

    # -- paging ------------------------------------------------------------------------

    async def paginate(
        self, path: str, params: Params | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[Any]:
        """Yield every entity of a `{entities, pageNumber, pageCount, nextUri}` listing.

        Asks for `page_size` per page (default: the endpoint's known maximum, see
        `paging.MAX_PAGE_SIZE`). Follows `nextUri` when the page has one, else increments
        `pageNumber` until `pageCount`; stops early on an empty page.
        """
        endpoint = f"GET {path_only(path)}"
        query: dict[str, Any] = dict(params or {})
        query["pageSize"] = page_size_for(path, page_size)
        number = 1
        query["pageNumber"] = number
        body = await self.get(path, params=query)
        seen: set[str] = set()
        while True:
            entities = entities_of(body, endpoint)
            for entity in entities:
                yield entity
            if not entities:
                return
            next_uri = body.get("nextUri")
            if isinstance(next_uri, str) and next_uri:
                relative = relative_uri(next_uri)
                if relative in seen:
                    raise ResponseError(endpoint=endpoint, field="nextUri", problem=f"repeats {relative!r}")
                seen.add(relative)
                body = await self.get(relative)
                continue
            page_count = int_field(body, "pageCount")
            number = int_field(body, "pageNumber") or number
            if page_count is None or number >= page_count:
                return
            number += 1
            query["pageNumber"] = number
            body = await self.get(path, params=query)

    async def paginate_cursor(
        self,
        path: str,
        params: Params | None = None,
        *,
        page_size: int | None = None,
        size_param: str = "pageSize",
    ) -> AsyncIterator[Any]:
        """Yield every entity of a cursor-paged listing: pass back the page's `cursor` as the
        `cursor` parameter until a page comes without one."""
        endpoint = f"GET {path_only(path)}"
        query: dict[str, Any] = dict(params or {})
        query[size_param] = page_size_for(path, page_size)
        seen: set[str] = set()
        while True:
            body = await self.get(path, params=query)
            for entity in entities_of(body, endpoint):
                yield entity
            cursor = body.get("cursor")
            if not isinstance(cursor, str) or not cursor:
                return
            if cursor in seen:
                raise ResponseError(endpoint=endpoint, field="cursor", problem="repeats a cursor already followed")
            seen.add(cursor)
            query["cursor"] = cursor
