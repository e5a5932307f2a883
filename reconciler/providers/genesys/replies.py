"""Reading a Genesys Cloud response: bounded in size, JSON parsed within bounds.

A server (or whatever answers at the configured URL) decides how much it sends; recon decides
how much it reads. `read_httpx` reads an httpx response opened with `stream=True` into an
`Answer`, and refuses (ResponseError, naming the endpoint) a body over MAX_RESPONSE_BYTES
after decompression, whether or not a Content-Length announced it. `Answer.json` parses with
reconciler.jsonsafe (size and nesting bounded). The pooled aiohttp sender (transport.py)
builds the same `Answer` with the same limit.

Called by: reconciler.providers.genesys.client and .auth (httpx), .transport (aiohttp).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler import jsonsafe
from reconciler.providers.genesys.errors import ResponseError

MAX_RESPONSE_BYTES = 32 * 2**20
"""Largest body read from Genesys Cloud: a 500-entity page of users with every field is a few
MB; a body larger than this is refused, not read."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One complete response: what the request loop reads of it."""

    status_code: int
    headers: Mapping[str, str]
    """Case-insensitive (httpx's Headers, aiohttp's CIMultiDictProxy)."""
    content: bytes

    def json(self) -> Any:
        return jsonsafe.loads(self.content, what="the response body", max_bytes=MAX_RESPONSE_BYTES)


def too_large(endpoint: str, status: int) -> ResponseError:
    return ResponseError(
        endpoint=endpoint,
        status=status,
        problem=f"the body is larger than {MAX_RESPONSE_BYTES // 2**20} MiB, the most recon reads",
    )


def declared_too_large(headers: Mapping[str, str], limit: int = MAX_RESPONSE_BYTES) -> bool:
    declared = headers.get("Content-Length") or headers.get("content-length") or ""
    return declared.isdigit() and int(declared) > limit


async def read_httpx(response: httpx.Response, endpoint: str) -> Answer:
    """The whole body of a streamed httpx `response` (closed afterwards), at most
    MAX_RESPONSE_BYTES decoded; ResponseError beyond."""
    try:
        if declared_too_large(response.headers):
            raise too_large(endpoint, response.status_code)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise too_large(endpoint, response.status_code)
                chunks.append(chunk)
        except httpx.DecodingError:
            raise ResponseError(
                endpoint=endpoint, status=response.status_code, problem="the body's content encoding is corrupt"
            ) from None
        return Answer(response.status_code, response.headers, b"".join(chunks))
    finally:
        await response.aclose()
