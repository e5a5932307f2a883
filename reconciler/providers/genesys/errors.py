"""Errors raised by the Genesys Cloud client, one class per way a call can fail.

    ProviderError (reconciler.providers.base)
    └── GenesysError            any failed Genesys Cloud call; carries endpoint and status
        ├── AuthenticationError     401 after one token refresh, or the token endpoint refused
        ├── ForbiddenError          403: names the missing permission when the body says it
        ├── NotFoundError           404
        ├── RequestRejectedError    any other 4xx (400, 409, 422 ...): the platform's message
        ├── RateLimitedError        429 after every retry was spent (retryable)
        ├── ServerError             5xx, timeouts and connection failures after retries (retryable)
        └── ResponseError           a 2xx whose body is not the JSON we expect (names the field)

`error_for_response` maps a non-2xx response to the right class. Messages name the endpoint
("GET /api/v2/routing/queues") and never contain credentials, tokens or query strings: the
platform's own message (which a server can make echo anything, a token included) is scrubbed
of every secret recon holds (reconciler.redact) and clipped to MAX_DETAIL characters.

Called by: `auth` and `client` in this package; providers built on the client catch these.
"""

from __future__ import annotations

from typing import Any

from reconciler import jsonsafe, redact
from reconciler.providers.base import ProviderError

MAX_DETAIL = 500
"""Characters of a platform error message that are kept."""

CREDENTIALS_NEXT_STEP = (
    "check the target's clientId and clientSecret references (env:/file:) point at an OAuth "
    "client-credentials client of this org and region"
)


class GenesysError(ProviderError):
    """A Genesys Cloud call failed. `endpoint` is "METHOD /path"; `status` the HTTP status (0: none)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int = 0,
        next_step: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message, next_step=next_step, retryable=retryable)
        self.endpoint = endpoint
        self.status = status


class AuthenticationError(GenesysError):
    """The credentials were rejected (token endpoint refusal, or 401 after a fresh token)."""

    def __init__(self, *, endpoint: str, status: int, detail: str = "") -> None:
        suffix = f" ({detail})" if detail else ""
        super().__init__(
            f"the Genesys Cloud credentials were rejected at {endpoint} (HTTP {status}){suffix}",
            endpoint=endpoint,
            status=status,
            next_step=CREDENTIALS_NEXT_STEP,
        )


class ForbiddenError(GenesysError):
    """403: the OAuth client lacks a permission. `permissions` lists the ones the body named."""

    def __init__(self, *, endpoint: str, permissions: list[str], detail: str = "") -> None:
        if permissions:
            what = f"missing permission {', '.join(permissions)}"
            step = f"grant {', '.join(permissions)} to the OAuth client's role, then run again"
        else:
            what = detail or "permission denied"
            step = "check the roles and divisions granted to the OAuth client"
        super().__init__(
            f"Genesys Cloud refused {endpoint} (HTTP 403): {what}", endpoint=endpoint, status=403, next_step=step
        )
        self.permissions = permissions


class NotFoundError(GenesysError):
    """404: the object or path does not exist."""


class RequestRejectedError(GenesysError):
    """Any other 4xx: the platform refused the request as malformed or conflicting."""


class RateLimitedError(GenesysError):
    """429 and every retry was spent. Retryable later."""


class ServerError(GenesysError):
    """5xx, a timeout or a connection failure, after every retry was spent. Retryable later."""


class ResponseError(GenesysError):
    """A successful status with a body we cannot use: not JSON, or a required field missing."""

    def __init__(self, *, endpoint: str, problem: str, status: int = 0, field: str = "") -> None:
        what = f"field {field!r} {problem}" if field else problem
        super().__init__(
            f"unexpected response from Genesys Cloud {endpoint}: {what}",
            endpoint=endpoint,
            status=status,
            next_step="this is likely an API change or a proxy in the way; run again with --verbose and report it",
        )
        self.field = field


def parse_body(content: bytes) -> Any:
    """The JSON body of an error response, or None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return jsonsafe.loads(content, what="the error body", max_bytes=1 << 20)
    except ValueError:
        return None


def missing_permissions(body: Any) -> list[str]:
    """The permission names a Genesys 403 body mentions (`messageParams`), if any."""
    if not isinstance(body, dict):
        return []
    params = body.get("messageParams")
    found: list[str] = []
    if isinstance(params, dict):
        for value in params.values():
            items = value if isinstance(value, list) else str(value).split(",")
            found.extend(remote_text(str(item)) for item in items if str(item).strip())
    return found[:20]


def body_message(body: Any) -> str:
    """The platform's human message from an error body ("" when there is none), scrubbed of
    secrets and clipped."""
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str):
            return remote_text(message)
    return ""


def remote_text(text: str) -> str:
    """Text a server sent, fit for a message: scrubbed of secrets, on one line, clipped."""
    return redact.clip(" ".join(text.split()), MAX_DETAIL)


def error_for_response(endpoint: str, status: int, content: bytes, *, after_retries: int = 0) -> GenesysError:
    """The error for a non-2xx response `status` with body `content` from `endpoint`."""
    body = parse_body(content)
    detail = body_message(body)
    if status == 401:
        return AuthenticationError(endpoint=endpoint, status=status)
    if status == 403:
        return ForbiddenError(endpoint=endpoint, permissions=missing_permissions(body), detail=detail)
    tail = f": {detail}" if detail else ""
    if status == 404:
        return NotFoundError(
            f"Genesys Cloud {endpoint} not found (HTTP 404){tail}",
            endpoint=endpoint,
            status=status,
            next_step="the object may have been deleted outside recon; run `recon plan` to see the drift",
        )
    tries = f" after {after_retries + 1} attempts" if after_retries else ""
    if status == 429:
        return RateLimitedError(
            f"Genesys Cloud rate limit hit on {endpoint}{tries} (HTTP 429){tail}",
            endpoint=endpoint,
            status=status,
            next_step="wait a minute and run again, or lower the client's requests per minute",
            retryable=True,
        )
    if status >= 500:
        return ServerError(
            f"Genesys Cloud failed on {endpoint}{tries} (HTTP {status}){tail}",
            endpoint=endpoint,
            status=status,
            next_step="run again later; check https://status.mypurecloud.com if it persists",
            retryable=status != 501,
        )
    return RequestRejectedError(
        f"Genesys Cloud rejected {endpoint} (HTTP {status}){tail}",
        endpoint=endpoint,
        status=status,
        next_step="this is likely a recon bug or an unsupported value; run again with --verbose and report it",
    )


def require_field(body: Any, name: str, endpoint: str) -> Any:
    """`body[name]`, or ResponseError naming `endpoint` and the field when it is absent or null."""
    if not isinstance(body, dict):
        raise ResponseError(endpoint=endpoint, problem="body is not a JSON object")
    value = body.get(name)
    if value is None:
        raise ResponseError(endpoint=endpoint, field=name, problem="is missing")
    return value
