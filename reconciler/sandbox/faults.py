"""Fault knobs of the Genesys sandbox: latency, 429s, 5xx, missing permissions, malformed bodies.

Knobs (settable in process with GenesysSandbox.set_faults, or over HTTP with
`PUT /api/v2/sandbox/faults`, readable with `GET /api/v2/sandbox/faults`):

    | knob (JSON name) | Python name      | effect                                                         |
    |------------------|------------------|----------------------------------------------------------------|
    | latencyMs        | latency_ms       | delay every answer by this (control endpoints excepted)         |
    | rate429          | rate_429         | probability of 429 too.many.requests.retry.after + Retry-After |
    | rate5xx          | rate_5xx         | probability of 503 service.unavailable                         |
    | denyPermissions  | deny_permissions | endpoints needing one of these answer 403 missing.permissions  |
    | malformed        | malformed        | {path: "json" | "missing-field"}: that path's 2xx JSON answers |
    |                  |                  | become non-JSON text, or lose `entities` (a paging envelope)   |
    |                  |                  | or else `id`                                                   |

429/5xx draws come from one `random.Random(seed)`, so a seed and a call order give the same
faults. A 403 body is Genesys's: {"message": "You are missing the following permission(s): a, b",
"code": "missing.permissions", "status": 403, "messageParams": {"permissions": [...]},
"contextId"}. Permission names (modelled on Genesys's domain:entity:action naming; UNCONFIRMED
where Genesys's exact name differs):

    | endpoint                                         | GET / POST / PUT,PATCH / DELETE                      |
    |--------------------------------------------------|------------------------------------------------------|
    | /api/v2/recording/mediaretentionpolicies[/{id}]  | recording:retentionPolicy:view / add / edit / delete |
    | /api/v2/routing/queues[/{id}]                    | routing:queue:view / add / edit / delete             |
    | /api/v2/users[/{id}]                             | directory:user:view                                  |
    | /api/v2/recording/settings                       | recording:recordingSettings:view / - / edit          |
    | /api/v2/recordings/deletionprotection            | POST recording:deletionProtection:view, PUT ...:edit |
    | /api/v2/audits/query[...]                        | audits:audit:view                                    |
    | /api/v2/analytics/conversations/details/query    | analytics:conversationDetail:view                    |
    | /api/v2/sandbox/conversations                    | analytics:conversationDetail:view                    |
    | /api/v2/speechandtextanalytics/transcripts/search| speechAndTextAnalytics:transcript:view              |

Called by: reconciler.sandbox.genesys_server. Imports only the stdlib and reconciler.sandbox.wire.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.sandbox.wire import ApiError, JsonObj, bad_request, missing_permissions, require_object

RETRY_AFTER_S = 1
RATE_LIMIT_MESSAGE = f"Rate limit exceeded the maximum. Retry the request in [{RETRY_AFTER_S}] seconds"
MALFORMED_KINDS = ("json", "missing-field")
NOT_JSON_BODY = b'{"entities": [{"id": "truncated'

_CRUD = ("view", "add", "edit", "delete")
_VERB_ACTION = {"GET": "view", "POST": "add", "PUT": "edit", "PATCH": "edit", "DELETE": "delete"}
_ENTITY_PERMISSIONS = {
    "/api/v2/recording/mediaretentionpolicies": "recording:retentionPolicy",
    "/api/v2/routing/queues": "routing:queue",
}
_FIXED_PERMISSIONS: dict[tuple[str, str], str] = {
    ("/api/v2/users", "GET"): "directory:user:view",
    ("/api/v2/recording/settings", "GET"): "recording:recordingSettings:view",
    ("/api/v2/recording/settings", "PUT"): "recording:recordingSettings:edit",
    ("/api/v2/recordings/deletionprotection", "POST"): "recording:deletionProtection:view",
    ("/api/v2/recordings/deletionprotection", "PUT"): "recording:deletionProtection:edit",
    ("/api/v2/audits/query", "GET"): "audits:audit:view",
    ("/api/v2/audits/query", "POST"): "audits:audit:view",
    ("/api/v2/analytics/conversations/details/query", "POST"): "analytics:conversationDetail:view",
    ("/api/v2/sandbox/conversations", "GET"): "analytics:conversationDetail:view",
    ("/api/v2/speechandtextanalytics/transcripts/search", "POST"): "speechAndTextAnalytics:transcript:view",
}


def permission_for(route_key: str, method: str) -> str | None:
    """The permission an endpoint needs: `route_key` is the collection path the route counts under."""
    prefix = _ENTITY_PERMISSIONS.get(route_key)
    if prefix is not None:
        action = _VERB_ACTION.get(method)
        return f"{prefix}:{action}" if action in _CRUD else None
    return _FIXED_PERMISSIONS.get((route_key, method))


def all_permissions() -> list[str]:
    """Every permission name the sandbox checks (for docs and tests)."""
    names = {f"{p}:{a}" for p in _ENTITY_PERMISSIONS.values() for a in _CRUD} | set(_FIXED_PERMISSIONS.values())
    return sorted(names)


class Faults:
    """The live fault knobs of one sandbox. Thread-safe."""

    def __init__(self, seed: int, *, latency_ms: int = 0, rate_429: float = 0.0, rate_5xx: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.latency_ms, self.rate_429, self.rate_5xx = latency_ms, rate_429, rate_5xx
        self.deny_permissions: frozenset[str] = frozenset()
        self.malformed: dict[str, str] = {}

    def set(
        self,
        *,
        latency_ms: int | None = None,
        rate_429: float | None = None,
        rate_5xx: float | None = None,
        deny_permissions: Iterable[str] | None = None,
        malformed: Mapping[str, str] | None = None,
    ) -> None:
        """Change the knobs given (None leaves a knob as it is). Raises ValueError on a bad value."""
        if latency_ms is not None and latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for name, rate in (("rate_429", rate_429), ("rate_5xx", rate_5xx)):
            if rate is not None and not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        bad = {k: v for k, v in (malformed or {}).items() if v not in MALFORMED_KINDS}
        if bad:
            raise ValueError(f"malformed kinds must be one of {list(MALFORMED_KINDS)}, got {bad}")
        with self._lock:
            if latency_ms is not None:
                self.latency_ms = latency_ms
            if rate_429 is not None:
                self.rate_429 = rate_429
            if rate_5xx is not None:
                self.rate_5xx = rate_5xx
            if deny_permissions is not None:
                self.deny_permissions = frozenset(deny_permissions)
            if malformed is not None:
                self.malformed = {k.rstrip("/"): v for k, v in malformed.items()}

    def clear(self) -> None:
        self.set(latency_ms=0, rate_429=0.0, rate_5xx=0.0, deny_permissions=(), malformed={})

    def to_json(self) -> JsonObj:
        with self._lock:
            return {
                "latencyMs": self.latency_ms,
                "rate429": self.rate_429,
                "rate5xx": self.rate_5xx,
                "denyPermissions": sorted(self.deny_permissions),
                "malformed": dict(self.malformed),
            }

    def update_from_json(self, body: Any) -> JsonObj:
        """PUT /api/v2/sandbox/faults: keys present are set, keys absent keep their value."""
        body = require_object(body)
        unknown = sorted(set(body) - {"latencyMs", "rate429", "rate5xx", "denyPermissions", "malformed"})
        if unknown:
            raise bad_request(f"unknown fault knob(s): {unknown}")
        latency, r429, r5xx = body.get("latencyMs"), body.get("rate429"), body.get("rate5xx")
        deny, malformed = body.get("denyPermissions"), body.get("malformed")
        if latency is not None and (not isinstance(latency, int) or isinstance(latency, bool)):
            raise bad_request("latencyMs must be an integer")
        for name, rate in (("rate429", r429), ("rate5xx", r5xx)):
            if rate is not None and (not isinstance(rate, int | float) or isinstance(rate, bool)):
                raise bad_request(f"{name} must be a number between 0 and 1")
        if deny is not None and (not isinstance(deny, list) or not all(isinstance(p, str) for p in deny)):
            raise bad_request("denyPermissions must be a list of permission names")
        if malformed is not None and (
            not isinstance(malformed, dict) or not all(isinstance(v, str) for v in malformed.values())
        ):
            raise bad_request('malformed must be an object {path: "json" | "missing-field"}')
        try:
            self.set(
                latency_ms=latency,
                rate_429=None if r429 is None else float(r429),
                rate_5xx=None if r5xx is None else float(r5xx),
                deny_permissions=deny,
                malformed=malformed,
            )
        except ValueError as exc:
            message = str(exc)
            for python_name, json_name in (
                ("rate_429", "rate429"),
                ("rate_5xx", "rate5xx"),
                ("latency_ms", "latencyMs"),
            ):
                message = message.replace(python_name, json_name)
            raise bad_request(message) from exc
        return self.to_json()

    def latency_s(self) -> float:
        with self._lock:
            return self.latency_ms / 1000

    def inject(self, route_key: str | None, method: str) -> None:
        """Raise the ApiError a faulty platform would answer with, if any (after authentication)."""
        with self._lock:
            rate_429, rate_5xx, denied = self.rate_429, self.rate_5xx, self.deny_permissions
            draw = self._rng.random() if rate_429 > 0 or rate_5xx > 0 else 1.0
        if draw < rate_429:
            raise ApiError(
                429, "too.many.requests.retry.after", RATE_LIMIT_MESSAGE, {"Retry-After": str(RETRY_AFTER_S)}
            )
        if draw < rate_429 + rate_5xx:
            raise ApiError(
                503, "service.unavailable", "The service is currently unavailable (sandbox fault injection)."
            )
        needed = permission_for(route_key, method) if route_key else None
        if needed is not None and needed in denied:
            raise missing_permissions([needed])

    def malform(self, path: str, payload: Any) -> tuple[bytes | None, Any]:
        """For a malformed path: (raw non-JSON bytes, None) or (None, payload with a field dropped)."""
        with self._lock:
            kind = self.malformed.get(path)
        if kind == "json":
            return NOT_JSON_BODY, None
        if kind == "missing-field" and isinstance(payload, dict):
            field = "entities" if "entities" in payload else "id"
            return None, {k: v for k, v in payload.items() if k != field}
        return None, payload
