"""A pooled HTTP engine for high-volume Genesys calls: aiohttp under `GenesysClient`'s loop.

`GenesysClient` sends through httpx by default (tests use `httpx.MockTransport`), and for
plan, apply and drift that is fine: a few hundred requests a run. The runtime is different:
every call start costs two platform requests (the recording lookup and the participant-data
write). Measured on this 2-core machine against the sandbox org, CPU per request in the
client process: httpx about 0.65–1.3 ms (URL and header models, and httpcore's pool, which
re-checks every kept-alive connection's socket on each request), aiohttp about 0.1 ms. With
httpx the runtime's one core stopped at about 300–400 stamped calls a second; with this
engine it keeps up with 1,000 (bench/bench_runtime.py).

`PooledSender` is only the "send one request, read the whole reply" step. Everything that
makes a request correct stays in `GenesysClient.request`: the rate limiter, the OAuth token
and its refresh on 401, retries on 429 / 5xx / transport errors, the error tree. To keep that
loop unchanged, aiohttp's connection and timeout errors are re-raised as httpx's
`TransportError` subclasses (`ConnectError`, `ReadTimeout`, `NetworkError`).

The session verifies TLS with httpx's default context (certifi, or `SSL_CERT_FILE` /
`SSL_CERT_DIR`), keeps at most `max_connections` connections, and is created on first use
inside the running event loop. URLs are sent as built (already encoded), never re-quoted.
Proxies: `HTTPS_PROXY` and `NO_PROXY` apply as they do for httpx, read once per host; a
plain-http request (loopback only, by the endpoint policy) never goes through a proxy.
(aiohttp's own `trust_env` re-reads them, and `.netrc`, in a worker thread on every request:
two thread hops per request, which cost more than the request itself.)

Credentials stay on the host they were sent to: redirects are not followed (aiohttp follows
them by default, Authorization header included; here a 3xx comes back to the request loop,
which refuses it), no cookie is kept (`DummyCookieJar`), and a body is read only up to
`replies.MAX_RESPONSE_BYTES`.

Called by: reconciler.cli.targets.genesys_client for `recon runtime`; bench/bench_runtime.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx
from yarl import URL

from reconciler.providers.genesys.client import USER_AGENT, Params
from reconciler.providers.genesys.paging import path_only
from reconciler.providers.genesys.replies import MAX_RESPONSE_BYTES, Answer, declared_too_large, too_large

DEFAULT_CONNECTIONS = 32
Reply = Answer
"""One complete response (the name this module used before replies.Answer)."""


class PooledSender:
    """See the module docstring. One per client; `aclose()` closes its connections."""

    def __init__(self, max_connections: int = DEFAULT_CONNECTIONS, timeout: float = 30.0) -> None:
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._proxies = getproxies()
        self._proxy_for: dict[tuple[str, str], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=httpx.create_ssl_context())
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            )
        return self._session

    async def send(
        self, method: str, url: str, *, params: Params | None, json: Any, headers: Mapping[str, str]
    ) -> Answer:
        """Send one request and read its body (at most replies.MAX_RESPONSE_BYTES). Raises
        httpx.TransportError subclasses for connection problems and timeouts (never aiohttp's
        own errors), ResponseError for a body over the limit."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(_query(params), doseq=True)
        target = URL(url, encoded=True)
        proxy = self._proxy(target) if self._proxies else None
        session = self._open()
        try:
            async with session.request(
                method, target, json=json, headers=headers, proxy=proxy, allow_redirects=False
            ) as response:
                if declared_too_large(response.headers):
                    raise too_large(f"{method} {path_only(target.path)}", response.status)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise too_large(f"{method} {path_only(target.path)}", response.status)
                    chunks.append(chunk)
                return Answer(response.status, response.headers, b"".join(chunks))
        except TimeoutError as error:
            raise httpx.ReadTimeout(f"{method} {url}: no complete answer in time") from error
        except aiohttp.ClientConnectorError as error:
            raise httpx.ConnectError(f"{method} {url}: {error}") from error
        except aiohttp.ClientError as error:
            raise httpx.NetworkError(f"{method} {url}: {type(error).__name__}") from error

    def _proxy(self, url: URL) -> str | None:
        key = (url.scheme, url.host or "")
        if key[0] != "https":
            return None  # plain http is loopback only: the request never leaves the machine
        if key not in self._proxy_for:
            bypass = proxy_bypass(key[1])
            self._proxy_for[key] = None if bypass else self._proxies.get(key[0])
        return self._proxy_for[key]

    async def aclose(self) -> None:
        """Close the pool's connections. Safe to call twice."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _query(params: Params) -> list[tuple[str, str]]:
    """httpx's query encoding: booleans as true/false, lists as repeated keys."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, "true" if item is True else "false" if item is False else str(item)))
    return pairs
