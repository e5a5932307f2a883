"""GenesysSandbox: an embedded, Genesys-Cloud-API-compatible HTTP server on loopback.

One base URL serves both the login host (`POST /oauth/token`) and the API host (`/api/v2/...`).
Endpoints and shapes (GC = follows Genesys Cloud v2; SANDBOX = sandbox-only or simplified):

  POST   /oauth/token                               GC  form grant_type=client_credentials, Basic auth
                                                        -> {access_token, token_type: "bearer", expires_in: 86400}
                                                        wrong credentials -> 401 {"error": "invalid_client", ...}
  GET    /api/v2/recording/mediaretentionpolicies   GC  paged (pageSize <= 100, default 25), ?name=
  POST   /api/v2/recording/mediaretentionpolicies   GC  -> 200 policy + id, selfUri, createdDate, modifiedDate
  GET/PUT/PATCH/DELETE .../mediaretentionpolicies/{id}  PUT replaces, PATCH merges top-level keys, DELETE -> 204
  GET    /api/v2/routing/queues                     GC  paged, pageSize <= 500 (UNCONFIRMED max), ?name=
  POST   /api/v2/routing/queues                     GC  -> 200 queue
  GET/PUT/DELETE /api/v2/routing/queues/{id}        GC  no PATCH (405 "method.not.allowed")
  GET    /api/v2/users, /api/v2/users/{id}          GC  paged, pageSize <= 500
  GET/PUT /api/v2/recording/settings                GC
  PUT    /api/v2/recordings/deletionprotection?protect=true|false  GC  {conversationIds} (<= 100) -> 204;
                                                        > 1000 protected in the org -> 400 "limit.exceeded"
  POST   /api/v2/recordings/deletionprotection      GC  {conversationIds} -> [{"id", "selfUri"}] of the protected ones
  GET    /api/v2/sandbox/conversations              SANDBOX ?queueId=&userId=&from=&to=, paged (<= 100)
                                                        -> {id, startTime, endTime, queueId, direction,
                                                            participants [{purpose, userId, name, email}], transcript}
  POST   /api/v2/audits/query                       SANDBOX answers inline with {"entities": [...], "total"};
                                                        the real API creates an async query job (UNCONFIRMED details)

Every /api/v2 call needs `Authorization: Bearer <issued token>` (else 401 "bad.credentials").
Errors are `{"message", "code", "status", "contextId"}`. Fault knobs (latency, 429, 503) apply
to /api/v2 calls after authentication and are deterministic for a given seed and call order.

Called by: tests and the demo. Imports only the stdlib and reconciler.sandbox siblings.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reconciler.sandbox.store import POLICIES, QUEUES, USERS, SandboxStore
from reconciler.sandbox.wire import ApiError, JsonObj, bad_request

TOKEN_LIFETIME_S = 86400
RETRY_AFTER_S = 1
RATE_LIMIT_MESSAGE = f"Rate limit exceeded the maximum. Retry the request in [{RETRY_AFTER_S}] seconds"


@dataclass(frozen=True)
class Request:
    method: str
    query: dict[str, str]
    body: Any
    object_id: str


Endpoint = Callable[[Request], tuple[int, Any]]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes | None
    headers: dict[str, str]


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


class GenesysSandbox:
    """An in-process fake Genesys Cloud org. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        state_path: Path | None = None,
        *,
        client_id: str = "recon-sandbox",
        client_secret: str = "sandbox-secret",
        latency_ms: int = 0,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.store = SandboxStore(state_path, seed, client_id=client_id)
        self._faults_lock = threading.Lock()
        self._rng = random.Random(seed)
        self.latency_ms, self.rate_429, self.rate_5xx = latency_ms, rate_429, rate_5xx
        self._tokens: dict[str, float] = {}
        self._counts: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1 on an OS-picked port, serve in a daemon thread, return the base URL."""
        if self._server is not None:
            return self.base_url
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="genesys-sandbox", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> GenesysSandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- knobs and out-of-band access -----------------------------------------------------------

    def set_faults(
        self, *, rate_429: float | None = None, rate_5xx: float | None = None, latency_ms: int | None = None
    ) -> None:
        with self._faults_lock:
            if rate_429 is not None:
                self.rate_429 = rate_429
            if rate_5xx is not None:
                self.rate_5xx = rate_5xx
            if latency_ms is not None:
                self.latency_ms = latency_ms

    def mutate(self, collection: str, object_id: str, changes: dict[str, Any], changed_by: str) -> JsonObj:
        """Edit an object out of band, as `changed_by` in the admin console; audited under that user.

        collection: "policies" (or "mediaretentionpolicies"), "queues", "users" or "settings"
        (object_id ignored). Raises KeyError for an unknown id, ValueError for an unknown collection.
        """
        return self.store.mutate(collection, object_id, changes, changed_by)

    @property
    def request_count(self) -> Counter[str]:
        """Requests received (including those answered 401/429/503), keyed by endpoint path prefix."""
        with self._faults_lock:
            return Counter(self._counts)

    # -- request handling ---------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[re.Pattern[str], str, dict[str, Endpoint]]]:
        s = self.store
        pol, que, usr = POLICIES.path, QUEUES.path, USERS.path

        def ok(value: Any) -> tuple[int, Any]:
            return 200, value

        table: list[tuple[str, str, dict[str, Endpoint]]] = [
            (pol, pol, {"GET": lambda r: ok(s.list_entities(POLICIES, r.query, max_size=100)), "POST": lambda r: ok(s.create(POLICIES, r.body))}),
            (pol + "/{id}", pol, {
                "GET": lambda r: ok(s.get(POLICIES, r.object_id)),
                "PUT": lambda r: ok(s.replace(POLICIES, r.object_id, r.body)),
                "PATCH": lambda r: ok(s.merge(POLICIES, r.object_id, r.body)),
                "DELETE": no_content(lambda r: s.delete(POLICIES, r.object_id)),
            }),
            (que, que, {"GET": lambda r: ok(s.list_entities(QUEUES, r.query, max_size=500, sort_by_name=True)), "POST": lambda r: ok(s.create(QUEUES, r.body))}),
            (que + "/{id}", que, {
                "GET": lambda r: ok(s.get(QUEUES, r.object_id)),
                "PUT": lambda r: ok(s.replace(QUEUES, r.object_id, r.body)),
                "DELETE": no_content(lambda r: s.delete(QUEUES, r.object_id)),
            }),
            (usr, usr, {"GET": lambda r: ok(s.list_entities(USERS, r.query, max_size=500, sort_by_name=True))}),
            (usr + "/{id}", usr, {"GET": lambda r: ok(s.get(USERS, r.object_id))}),
            ("/api/v2/recording/settings", "/api/v2/recording/settings", {
                "GET": lambda r: ok(s.get_settings()),
                "PUT": lambda r: ok(s.put_settings(r.body)),
            }),
            ("/api/v2/recordings/deletionprotection", "/api/v2/recordings/deletionprotection", {
                "PUT": no_content(lambda r: s.set_protection(r.body, _protect_flag(r.query))),
                "POST": lambda r: ok(s.query_protection(r.body)),
            }),
            ("/api/v2/sandbox/conversations", "/api/v2/sandbox/conversations", {"GET": lambda r: ok(s.list_conversations(r.query))}),
            ("/api/v2/audits/query", "/api/v2/audits/query", {"POST": lambda r: ok(s.query_audit(r.body))}),
        ]  # fmt: skip
        return [(re.compile("^" + p.replace("{id}", "(?P<id>[^/]+)") + "$"), key, m) for p, key, m in table]

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Response:
        """Answer one HTTP request (transport-independent: the handler class only does I/O)."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        match = next(((m, key, eps) for rx, key, eps in self._routes if (m := rx.match(path))), None)
        with self._faults_lock:
            self._counts[match[1] if match else path] += 1
            latency_ms = self.latency_ms
        if latency_ms > 0:
            time.sleep(latency_ms / 1000)
        try:
            if path == "/oauth/token":
                return self._token(method, headers, raw_body)
            if not path.startswith("/api/v2/"):
                raise ApiError(404, "not.found", f"no resource at {path}")
            self._authenticate(headers)
            self._inject_fault()
            if match is None:
                raise ApiError(404, "not.found", f"no resource at {path}")
            rx_match, _, endpoints = match
            endpoint = endpoints.get(method)
            if endpoint is None:
                raise ApiError(405, "method.not.allowed", f"HTTP {method} is not supported on {path}")
            body = _parse_body(raw_body) if method in {"POST", "PUT", "PATCH"} else None
            status, payload = endpoint(Request(method, query, body, rx_match.groupdict().get("id") or ""))
        except ApiError as exc:
            return _json(exc.status, exc.body(), exc.headers)
        if payload is None:
            return Response(status, None, {})
        return _json(status, payload)

    def _token(self, method: str, headers: dict[str, str], raw_body: bytes) -> Response:
        if method != "POST":
            raise ApiError(405, "method.not.allowed", "use POST /oauth/token")
        form = dict(parse_qsl(raw_body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return _json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "description": "only client_credentials",
                    "error_description": "only client_credentials",
                },
            )
        auth = headers.get("authorization", "")
        try:
            client_id, _, secret = (
                base64.b64decode(auth.removeprefix("Basic ").strip(), validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            client_id = secret = ""
        if not auth.startswith("Basic ") or (client_id, secret) != (self.client_id, self.client_secret):
            return _json(
                401,
                {"error": "invalid_client", "description": "client not found", "error_description": "client not found"},
            )
        token = secrets.token_urlsafe(32)
        with self._faults_lock:
            self._tokens[token] = time.monotonic() + TOKEN_LIFETIME_S
        return _json(200, {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME_S})

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise ApiError(401, "bad.credentials", "No authentication bearer token specified in authorization header.")
        with self._faults_lock:
            expiry = self._tokens.get(auth[7:].strip())
        if expiry is None or expiry < time.monotonic():
            raise ApiError(401, "bad.credentials", "Invalid login credentials.")

    def _inject_fault(self) -> None:
        with self._faults_lock:
            rate_429, rate_5xx = self.rate_429, self.rate_5xx
            if rate_429 <= 0 and rate_5xx <= 0:
                return
            draw = self._rng.random()
        if draw < rate_429:
            raise ApiError(
                429, "too.many.requests.retry.after", RATE_LIMIT_MESSAGE, {"Retry-After": str(RETRY_AFTER_S)}
            )
        if draw < rate_429 + rate_5xx:
            raise ApiError(
                503, "service.unavailable", "The service is currently unavailable (sandbox fault injection)."
            )


def no_content(action: Callable[[Request], None]) -> Endpoint:
    """An endpoint that performs `action` and answers 204 No Content."""

    def run(request: Request) -> tuple[int, Any]:
        action(request)
        return 204, None

    return run


def _protect_flag(query: dict[str, str]) -> bool:
    value = query.get("protect", "").lower()
    if value not in {"true", "false"}:
        raise bad_request("query parameter protect=true|false is required")
    return value == "true"


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise bad_request("a JSON request body is required")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: GenesysSandbox
    ) -> None:
        super().__init__(address, handler)
        self.sandbox = sandbox
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Shut down kept-alive client connections so their handler threads end."""
        with self.connections_lock:
            conns = list(self.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.open_connections.discard(self.connection)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.sandbox.handle(self.command, self.path, headers, raw)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body or b"")))
        self.end_headers()
        if response.body and response.status != 204:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""
