"""OAuth client-credentials tokens for Genesys Cloud: fetch, cache, refresh.

`POST {login_base}/oauth/token` with form `grant_type=client_credentials` and
`Authorization: Basic base64(id:secret)` returns `{access_token, token_type, expires_in}`.
The token is cached and fetched again `REFRESH_MARGIN` (60 s) before it expires, or at once
after the API answers 401 (`invalidate`). Concurrent callers share one fetch (asyncio.Lock).

Credentials arrive as plain strings: resolving `env:`/`file:` references is the caller's
job. Neither the secret nor the token ever appears in a repr or an error message: both (and
the Basic header) are registered with reconciler.redact, so a server echoing one back is
scrubbed from everything recon prints or writes. The token request goes to the login host
only, is never redirected (a 3xx is an error), and its answer is read within
replies.MAX_RESPONSE_BYTES.

Called by: `reconciler.providers.genesys.client.GenesysClient` (one TokenSource per client).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from reconciler import redact
from reconciler.providers.genesys.errors import (
    AuthenticationError,
    RateLimitedError,
    ResponseError,
    ServerError,
    body_message,
    error_for_response,
    parse_body,
    remote_text,
)
from reconciler.providers.genesys.replies import Answer, read_httpx

REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a cached token counts as stale."""

TOKEN_PATH = "/oauth/token"
MAX_LIFETIME_S = 366 * 86_400
"""The longest token lifetime believed from a server (Genesys issues 86,400 s)."""


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """An OAuth client id and secret. The secret is left out of repr()."""

    client_id: str
    client_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        redact.register(self.client_secret, self.basic_header(), self.basic_header().removeprefix("Basic "))

    def basic_header(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class TokenSource:
    """Hands out a valid bearer token, fetching a new one only when needed."""

    def __init__(
        self,
        login_base: str,
        credentials: ClientCredentials,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        self._url = login_base.rstrip("/") + TOKEN_PATH
        self._credentials = credentials
        self._http = http
        self._clock = clock
        self._margin = refresh_margin
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0
        """How many token requests were sent."""

    def __repr__(self) -> str:
        return f"TokenSource(url={self._url!r}, client_id={self._credentials.client_id!r})"

    @property
    def client_id(self) -> str:
        return self._credentials.client_id

    @property
    def endpoint(self) -> str:
        return f"POST {TOKEN_PATH}"

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at - self._margin

    async def token(self) -> str:
        """A token valid for at least the refresh margin; fetched once for all concurrent callers."""
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh():
                await self._fetch()
            assert self._token is not None
            return self._token

    async def invalidate(self, stale: str) -> None:
        """Forget `stale` (the API refused it) unless a newer token has already replaced it."""
        async with self._lock:
            if self._token == stale:
                self._token = None
                self._expires_at = 0.0

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            request = self._http.build_request(
                "POST",
                self._url,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": self._credentials.basic_header(), "Accept": "application/json"},
            )
            response = await read_httpx(
                await self._http.send(request, stream=True, follow_redirects=False), self.endpoint
            )
        except httpx.TransportError as exc:
            raise ServerError(
                f"could not reach the Genesys Cloud login service at {self._url}: {type(exc).__name__}",
                endpoint=self.endpoint,
                next_step="check the region and network access to the login host, then run again",
                retryable=True,
            ) from None
        status = response.status_code
        if 300 <= status < 400:
            raise ResponseError(
                endpoint=self.endpoint,
                status=status,
                problem=f"a redirect (HTTP {status}), which recon does not follow with credentials; "
                "set loginUrl to the login host itself",
            )
        if status in (400, 401, 403):
            body = parse_body(response.content)
            detail = ""
            if isinstance(body, dict):
                detail = remote_text(str(body.get("error_description") or body.get("error") or "")) or body_message(
                    body
                )
            raise AuthenticationError(endpoint=self.endpoint, status=status, detail=detail)
        if status >= 400:
            error = error_for_response(self.endpoint, status, response.content)
            if isinstance(error, RateLimitedError | ServerError):
                raise error
            raise AuthenticationError(
                endpoint=self.endpoint, status=status, detail=body_message(parse_body(response.content))
            )
        self._token, lifetime = self._parse(response)
        self._expires_at = self._clock() + lifetime

    def _parse(self, response: Answer) -> tuple[str, float]:
        try:
            body = response.json()
        except ValueError:
            raise ResponseError(
                endpoint=self.endpoint, status=response.status_code, problem="body is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise ResponseError(
                endpoint=self.endpoint, status=response.status_code, problem="body is not a JSON object"
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ResponseError(endpoint=self.endpoint, field="access_token", problem="is missing")
        redact.register(token)
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or not 0 < lifetime <= MAX_LIFETIME_S:
            # Bounded: 10**400 would overflow float(), inf would never be refreshed.
            raise ResponseError(
                endpoint=self.endpoint,
                field="expires_in",
                problem=f"is missing or not from 1 to {MAX_LIFETIME_S} seconds",
            )
        return token, float(lifetime)
