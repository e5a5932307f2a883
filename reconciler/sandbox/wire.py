"""Wire-format helpers for the Genesys Cloud sandbox: error bodies, the paging envelope, timestamps.

Shapes follow the Genesys Cloud Platform API v2 (see ../shared/REFERENCES.md §1):
- errors: `{"message", "code", "status", "contextId"}` (the real API may add `details`/`errors`);
  a 403 for a missing permission adds `messageParams {"permissions": [...]}`;
- paging: `{entities, pageSize, pageNumber, total, pageCount, firstUri, selfUri, lastUri,
  nextUri (absent on the last page), previousUri (absent on the first page)}`; URIs are
  path + query, relative to the API base, as the real API returns them.

Called by: reconciler.sandbox.store and reconciler.sandbox.genesys_server. Imports only the stdlib.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

JsonObj = dict[str, Any]


class ApiError(Exception):
    """An HTTP error answer in the Genesys error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        extra: JsonObj | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> JsonObj:
        return {**error_body(self.status, self.code, self.message), **self.extra}


def error_body(status: int, code: str, message: str) -> JsonObj:
    return {"message": message, "code": code, "status": status, "contextId": str(uuid.uuid4())}


def not_found(what: str, object_id: str) -> ApiError:
    return ApiError(404, "not.found", f"{what} {object_id} not found")


def bad_request(message: str, code: str = "bad.request") -> ApiError:
    return ApiError(400, code, message)


def missing_permissions(permissions: Sequence[str]) -> ApiError:
    """Genesys's 403 for a client whose role lacks a permission."""
    names = list(permissions)
    return ApiError(
        403,
        "missing.permissions",
        f"You are missing the following permission(s): {', '.join(names)}",
        extra={"messageParams": {"permissions": names}},
    )


def require_object(body: Any, what: str = "request body") -> JsonObj:
    if not isinstance(body, dict):
        raise bad_request(f"{what} must be a JSON object")
    return body


def parse_interval(value: Any, field: str = "interval") -> tuple[datetime, datetime]:
    """An ISO-8601 interval `start/end` (both full timestamps). Raises ApiError 400 naming `field`."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise bad_request(f"{field} is required, as ISO-8601 'start/end'")
    start, end = (parse_iso(part) for part in value.split("/"))
    if end <= start:
        raise bad_request(f"{field} must end after it starts")
    return start, end


def iso(dt: datetime) -> str:
    """Genesys timestamp format: `2026-11-01T09:30:00.000Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(datetime.now(UTC))


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (with `Z` or an offset; naive means UTC). Raises ApiError 400."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise bad_request(f"invalid ISO-8601 timestamp: {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def int_param(query: dict[str, str], name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer, got {raw!r}", "invalid.value") from exc
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise bad_request(f"{name} must be {bound}, got {value}", "invalid.value")
    return value


def page(
    items: Sequence[JsonObj],
    path: str,
    query: dict[str, str],
    *,
    default_size: int = 25,
    max_size: int = 100,
    keep_params: Sequence[str] = ("name",),
) -> JsonObj:
    """Slice `items` by `pageSize`/`pageNumber` from `query` and wrap them in the paging envelope.

    A `pageSize` above `max_size` is a 400 (`invalid.value`) rather than silently clamped, so a
    client that asks for too much learns it. `keep_params` are echoed into every URI.
    """
    size = int_param(query, "pageSize", default_size, maximum=max_size)
    number = int_param(query, "pageNumber", 1)
    total = len(items)
    page_count = math.ceil(total / size) if total else 0
    start = (number - 1) * size
    extra = {k: query[k] for k in keep_params if query.get(k)}

    def uri(n: int) -> str:
        return f"{path}?{urlencode({'pageSize': size, 'pageNumber': n, **extra})}"

    envelope: JsonObj = {
        "entities": list(items[start : start + size]),
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "selfUri": uri(number),
        "lastUri": uri(max(page_count, 1)),
    }
    if number < page_count:
        envelope["nextUri"] = uri(number + 1)
    if number > 1:
        envelope["previousUri"] = uri(number - 1)
    return envelope
