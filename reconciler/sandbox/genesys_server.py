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
  POST   /api/v2/audits/query                       GC  async query job (completes at once), see audit.py
  GET    /api/v2/audits/query/{id}[/results]        GC  status / cursor-paged AuditLogMessage results
  POST   /api/v2/audits/query/realtime              GC  page-numbered results
  POST   /api/v2/analytics/conversations/details/query     GC  see analytics.py
  POST   /api/v2/speechandtextanalytics/transcripts/search GC  see analytics.py
  GET    /api/v2/organizations/me                   GC  -> {"id", "name"} (store.DEFAULT_ORGANIZATION unless seeded)
  GET    /api/v2/conversations/calls/{id}           GC  a live call and its participants' attributes (conversations.py)
  PATCH  /api/v2/conversations/calls/{id}/participants/{pid}/attributes   GC  {"attributes": {str: str}} -> 202
  GET    /api/v2/conversations/{id}/recordingmetadata                    GC  [recording] (every sandbox call is recorded)
  GET    /api/v2/sandbox/conversations              SANDBOX raw conversations ?queueId=&userId=&from=&to=, paged
  POST/GET /api/v2/notifications/channels           GC  -> {id, connectUri ws://127.0.0.1:<port>/channels/<id>, expires}
                                                        / {entities}; websocket events: see notifications.py
  GET/PUT/POST/DELETE .../channels/{id}/subscriptions  GC  [{id: topic}] -> {entities}; PUT replaces, POST adds,
                                                        DELETE -> 204; unknown channel -> 404, bad topic -> 400

Sandbox control endpoints (SANDBOX; never subject to faults, latency or request counting):

  GET    /api/v2/sandbox/health                     no auth -> {"status": "ok", "requests": {path: count}}
  GET    /api/v2/sandbox/faults                     -> {latencyMs, rate429, rate5xx, denyPermissions, malformed}
  PUT    /api/v2/sandbox/faults                     same shape; keys present are set, absent keys unchanged;
                                                        -> 200 the knobs now; bad value -> 400 naming the knob
  DELETE /api/v2/sandbox/faults                     every knob off -> 200 the knobs now
  POST   /api/v2/sandbox/mutate                     {collection: policies|queues|users|settings, id | name,
                                                        changes {top-level merge}, changedBy} -> 200 the object,
                                                        audited as changedBy from client "admin-console";
                                                        unknown id/name -> 404; bad field -> 400 naming it
  POST   /api/v2/sandbox/reset                      re-seed from the seed (faults and tokens kept)
                                                        -> 200 {"status": "reset", "seed": n}
  POST   /api/v2/sandbox/conversations              calls that just happened {queue, users, startTime?, transcript?, count?}
                                                        -> 200 {"conversations": [ids]}; each is also sent to
                                                        channels subscribed to v2.routing.queues.{id}.conversations
  POST/GET/DELETE /api/v2/sandbox/floor          a simulated trading floor placing calls (conversations and, for
                                                        traders on TradeSense servers, CDRs): see floor.py
  POST   /api/v2/sandbox/export                     {bucket, from?: YYYY-MM-DD, to?: YYYY-MM-DD (inclusive)} -> the
                                                        platform's S3 recording export of the conversations that
                                                        started in the window (recording_export.py) -> 200
                                                        {"exported": n, "bucket", "orgId"}; no S3 configured
                                                        (`archive_s3`) -> 409; no such bucket -> 404
  GET    /api/v2/sandbox/notifications              -> {heartbeatSeconds, queueSize, channels [{id, connectUri,
                                                        expires, topics, connected, sent, dropped}]}
  POST   /api/v2/sandbox/notifications/close        {channelId?, drop?} -> v2.system.socket_closing then close
                                                        (drop: abort, no message) -> {closed: [ids], drop}

Every /api/v2 call except health needs `Authorization: Bearer <issued token>` (else 401
"bad.credentials"; see auth.py). Errors are `{"message", "code", "status", "contextId"}`. Fault knobs
(faults.py) apply to /api/v2 calls after authentication; 429/503 draws are deterministic for a
given seed and call order. `request_count` / health count requests by collection path
(a `/{id}` route counts under its collection), /oauth/token included. Every audited write (API or
mutate) is also published to channels subscribed to v2.audits.entitytype.{type}.entityid.{id}.

Called by: tests, the demo and `recon sandbox` (through daemon.py). Imports only the stdlib and
reconciler.sandbox siblings (recording_export imports boto3 when an export runs).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reconciler.sandbox import analytics, conversations
from reconciler.sandbox.audit import AuditQueries, realtime
from reconciler.sandbox.auth import TokenIssuer
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.floor import Floor
from reconciler.sandbox.notifications import CHANNELS, Notifications
from reconciler.sandbox.recording_export import export_recordings, parse_request
from reconciler.sandbox.store import COLLECTIONS, POLICIES, QUEUES, USERS, SandboxStore
from reconciler.sandbox.tradesense import TradeSenseSandbox
from reconciler.sandbox.transport import LoopbackService, Response, json_response
from reconciler.sandbox.wire import ApiError, JsonObj, bad_request, not_found, require_object

SANDBOX_PREFIX = "/api/v2/sandbox/"
HEALTH = SANDBOX_PREFIX + "health"


@dataclass(frozen=True)
class Request:
    method: str
    query: dict[str, str]
    body: Any
    object_id: str
    sub_id: str = ""
    """The second id of a nested route (a participant of a conversation)."""


Endpoint = Callable[[Request], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    key: str  # the collection path it counts (and is permission-checked) under
    methods: dict[str, Endpoint]
    control: bool  # a sandbox control endpoint: no faults, latency or counting


class GenesysSandbox(LoopbackService):
    """An in-process fake Genesys Cloud org. Use as a context manager or call start()/stop().

    `notifications` is the channel/websocket component (notifications.py), started and stopped
    with the server; default `Notifications()` (30 s heartbeat). `archive_s3` is the S3 service
    the recording export writes to ({url, accessKeyId, secretAccessKey, region}, the daemon's
    endpoints entry); None answers the export endpoint 409. `tradesense` is where the floor
    (floor.py) finds traders and writes their CDRs; None: the floor places recordings only.
    """

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
        notifications: Notifications | None = None,
        archive_s3: Mapping[str, Any] | None = None,
        tradesense: TradeSenseSandbox | None = None,
    ) -> None:
        self.archive_s3 = archive_s3
        self.client_id = client_id
        self.client_secret = client_secret
        self.seed = seed
        self.store = SandboxStore(state_path, seed, client_id=client_id)
        self.faults = Faults(seed, latency_ms=latency_ms, rate_429=rate_429, rate_5xx=rate_5xx)
        self.audit_queries = AuditQueries()
        self.auth = TokenIssuer(client_id, client_secret)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.notifications = notifications or Notifications()
        self._audit_seen = len(self.store.data["audit"])  # audit entries already published
        self.floor = Floor(self, tradesense)
        self._routes = self._build_routes()

    # -- lifecycle ----------------------------------------------------------------------------

    thread_name = "genesys-sandbox"

    def start(self) -> str:
        """Serve on 127.0.0.1 (see LoopbackService) with the notification channels."""
        if self._server is None:
            self.notifications.start()
        return super().start()

    def stop(self) -> None:
        """Stop serving, close the channels and write what only lives in memory."""
        if self._server is None:
            return
        self.floor.stop()
        super().stop()
        self.notifications.stop()
        self.store.flush()

    # -- knobs and out-of-band access -----------------------------------------------------------

    def set_faults(
        self,
        *,
        rate_429: float | None = None,
        rate_5xx: float | None = None,
        latency_ms: int | None = None,
        deny_permissions: Iterable[str] | None = None,
        malformed: Mapping[str, str] | None = None,
    ) -> None:
        """Change fault knobs on a running (or stopped) sandbox; None leaves a knob as it is.

        deny_permissions: permission names (faults.py table) whose endpoints answer 403.
        malformed: {exact request path: "json" | "missing-field"}. Raises ValueError on bad values.
        """
        self.faults.set(
            rate_429=rate_429,
            rate_5xx=rate_5xx,
            latency_ms=latency_ms,
            deny_permissions=deny_permissions,
            malformed=malformed,
        )

    def mutate(self, collection: str, object_id: str, changes: dict[str, Any], changed_by: str) -> JsonObj:
        """Edit an object out of band, as `changed_by` in the admin console; audited under that user.

        collection: "policies" (or "mediaretentionpolicies"), "queues", "users" or "settings"
        (object_id ignored). Raises KeyError for an unknown id, ValueError for an unknown
        collection or a platform-owned field in `changes`.
        """
        changed = self.store.mutate(collection, object_id, changes, changed_by)
        self._publish_audit()
        return changed

    def reset(self) -> None:
        """Re-seed the org from the seed; audit query executions are dropped, faults and tokens kept."""
        with self.store.lock:
            self.store.reset()
            self._audit_seen = len(self.store.data["audit"])
        self.audit_queries.clear()

    def add_conversations(self, body: Any) -> JsonObj:
        """Calls that just happened (store.add_conversations), also sent to subscribed channels."""
        made = self.store.add_conversations(body)
        wanted = set(made["conversations"])
        added: list[JsonObj] = []
        with self.store.lock:
            for conversation in reversed(self.store.data["conversations"]):  # newest last
                if len(added) == len(wanted):
                    break
                if conversation["id"] in wanted:
                    added.append(conversation)
        self.notifications.publish_conversations(added[::-1])
        return made

    def export_recordings(self, body: Any) -> JsonObj:
        """POST /api/v2/sandbox/export: the platform's S3 recording export into `archive_s3`."""
        bucket, window = parse_request(body)
        if self.archive_s3 is None or not isinstance(self.archive_s3.get("url"), str):
            raise ApiError(409, "sandbox.s3.unavailable", "this sandbox has no S3 service to export recordings to")
        org_id = str(self.store.organization()["id"])
        try:
            count = export_recordings(
                self.store.conversations(),
                self.store.queue_names(),
                s3=self.archive_s3,
                bucket=bucket,
                org_id=org_id,
                window=window,
            )
        except Exception as exc:  # boto3/botocore errors, duck-typed: botocore is imported lazily
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchBucket"}:
                raise not_found("bucket", bucket) from exc
            raise ApiError(502, "sandbox.s3.failed", f"the export to bucket {bucket!r} failed: {exc}") from exc
        return {"exported": count, "bucket": bucket, "orgId": org_id}

    def _publish_audit(self) -> None:
        """Send audit entries written since the last call to channels subscribed to them."""
        with self.store.lock:
            entries = self.store.data["audit"]
            fresh, self._audit_seen = entries[min(self._audit_seen, len(entries)) :], len(entries)
        self.notifications.publish_audit(fresh)

    def add_bulk(self, queues: int, policies: int) -> None:
        """Insert `queues` queues "bench-queue-00001".. and `policies` policies "bench-policy-0001"..

        Direct store inserts (no HTTP, no audit entries, one save); policies' conditions.forQueues
        reference 1-3 of the new queues. For benchmarks.
        """
        if queues < 0 or policies < 0:
            raise ValueError("queues and policies must be >= 0")
        self.store.add_bulk(queues, policies)

    @property
    def request_count(self) -> Counter[str]:
        """Requests received (including those answered 401/429/503), keyed by endpoint path prefix."""
        with self._lock:
            return Counter(self._counts)

    # -- request handling ---------------------------------------------------------------------

    def _build_routes(self) -> list[Route]:
        s, aq, n = self.store, self.audit_queries, self.notifications
        pol, que, usr = POLICIES.path, QUEUES.path, USERS.path
        audits, sbx = "/api/v2/audits/query", "/api/v2/sandbox"
        details = "/api/v2/analytics/conversations/details/query"
        transcripts = "/api/v2/speechandtextanalytics/transcripts/search"
        calls = "/api/v2/conversations/calls"

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
            (audits, audits, {"POST": lambda r: ok(aq.submit(r.body, s.audit_entries()))}),
            (audits + "/realtime", audits, {"POST": lambda r: ok(realtime(r.body, s.audit_entries()))}),
            (audits + "/{id}", audits, {"GET": lambda r: ok(aq.status(r.object_id))}),
            (audits + "/{id}/results", audits, {"GET": lambda r: ok(aq.results(r.object_id, r.query))}),
            (details, details, {"POST": lambda r: ok(analytics.query_conversations(r.body, s.conversations(), s.queue_names()))}),
            (transcripts, transcripts, {"POST": lambda r: ok(analytics.search_transcripts(r.body, s.conversations()))}),
            ("/api/v2/organizations/me", "/api/v2/organizations/me", {"GET": lambda r: ok(s.organization())}),
            (calls + "/{id}", calls, {"GET": lambda r: ok(self._call(r.object_id))}),
            (calls + "/{id}/participants/{pid}/attributes", calls, {"PATCH": self._set_attributes}),
            ("/api/v2/conversations/{id}/recordingmetadata", calls, {
                "GET": lambda r: ok(conversations.recording_metadata(s.conversation(r.object_id))),
            }),
            (sbx + "/conversations", sbx + "/conversations", {
                "GET": lambda r: ok(analytics.list_conversations(r.query, s.conversations())),
                "POST": lambda r: ok(self.add_conversations(r.body)),
            }),
            (CHANNELS, CHANNELS, {"GET": lambda r: ok(n.list_channels()), "POST": lambda r: ok(n.create_channel())}),
            (CHANNELS + "/{id}/subscriptions", CHANNELS, {
                "GET": lambda r: ok(n.subscriptions(r.object_id)),
                "PUT": lambda r: ok(n.subscribe(r.object_id, r.body, replace=True)),
                "POST": lambda r: ok(n.subscribe(r.object_id, r.body, replace=False)),
                "DELETE": no_content(lambda r: n.unsubscribe_all(r.object_id)),
            }),
        ]  # fmt: skip
        control: list[tuple[str, str, dict[str, Endpoint]]] = [
            (HEALTH, HEALTH, {"GET": lambda r: ok({"status": "ok", "requests": dict(self.request_count)})}),
            (sbx + "/faults", sbx + "/faults", {
                "GET": lambda r: ok(self.faults.to_json()),
                "PUT": lambda r: ok(self.faults.update_from_json(r.body)),
                "DELETE": lambda r: ok(self._clear_faults()),
            }),
            (sbx + "/mutate", sbx + "/mutate", {"POST": lambda r: ok(self._mutate_over_http(r.body))}),
            (sbx + "/reset", sbx + "/reset", {"POST": lambda r: ok(self._reset_over_http())}),
            (sbx + "/export", sbx + "/export", {"POST": lambda r: ok(self.export_recordings(r.body))}),
            (sbx + "/notifications", sbx + "/notifications", {"GET": lambda r: ok(n.state())}),
            (sbx + "/floor", sbx + "/floor", {
                "GET": lambda r: ok(self.floor.state(ledger=r.query.get("calls") == "true")),
                "POST": lambda r: ok(self.floor.place(r.body)),
                "DELETE": lambda r: ok(self.floor.stop()),
            }),
            (sbx + "/notifications/close", sbx + "/notifications", {"POST": lambda r: ok(n.close_sockets(r.body))}),
        ]  # fmt: skip

        def compile_route(path: str, key: str, methods: dict[str, Endpoint], is_control: bool) -> Route:
            pattern = re.compile("^" + path.replace("{id}", "(?P<id>[^/]+)").replace("{pid}", "(?P<pid>[^/]+)") + "$")
            return Route(pattern, key, methods, is_control)

        return [compile_route(*row, False) for row in table] + [compile_route(*row, True) for row in control]

    def _call(self, conversation_id: str) -> JsonObj:
        conv = self.store.conversation(conversation_id)
        return conversations.call_view(conv, conv["attributes"])

    def _set_attributes(self, request: Request) -> tuple[int, Any]:
        conv = self.store.conversation(request.object_id)
        attributes = conversations.checked_attributes(conv, request.sub_id, request.body)
        self.store.set_attributes(request.object_id, request.sub_id, attributes)
        return 202, None

    def _clear_faults(self) -> JsonObj:
        self.faults.clear()
        return self.faults.to_json()

    def _reset_over_http(self) -> JsonObj:
        self.reset()
        return {"status": "reset", "seed": self.seed}

    def _mutate_over_http(self, body: Any) -> JsonObj:
        body = require_object(body)
        collection, changes, changed_by = body.get("collection"), body.get("changes"), body.get("changedBy")
        if collection not in (*COLLECTIONS, "mediaretentionpolicies"):
            raise bad_request(f"collection must be one of {list(COLLECTIONS)}, got {collection!r}")
        if not isinstance(changes, dict) or not changes:
            raise bad_request("changes must be a non-empty JSON object")
        if not isinstance(changed_by, str) or not changed_by.strip():
            raise bad_request("changedBy is required (the person making the edit)")
        object_id = body.get("id")
        if collection != "settings":
            name = body.get("name")
            if not isinstance(object_id, str) and not isinstance(name, str):
                raise bad_request("id or name is required")
            if not isinstance(object_id, str):
                try:
                    object_id = self.store.find_id(collection, str(name))
                except KeyError as exc:
                    raise not_found(collection, f"named {name!r}") from exc
        try:
            return self.store.mutate(collection, str(object_id or ""), changes, changed_by)
        except KeyError as exc:
            raise not_found(collection, str(object_id)) from exc
        except ValueError as exc:
            raise bad_request(str(exc)) from exc

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Response:
        """Answer one HTTP request (transport-independent: transport.py only does I/O)."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        found = next(((m, route) for route in self._routes if (m := route.pattern.match(path))), None)
        control = found is not None and found[1].control
        latency_s = 0.0
        if not control:
            with self._lock:
                self._counts[found[1].key if found else path] += 1
            latency_s = self.faults.latency_s()
        response = self._answer(method, path, query, headers, raw_body, found)
        return replace(response, delay_s=latency_s) if latency_s > 0 else response

    def runs_on_loop(self, method: str, path: str) -> bool:
        """The API answers on the server's loop (in-memory work); the sandbox's own control
        endpoints (export to S3, the floor, reset) in a worker thread."""
        return not path.startswith(SANDBOX_PREFIX)

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        raw_body: bytes,
        found: tuple[re.Match[str], Route] | None,
    ) -> Response:
        control = found is not None and found[1].control
        try:
            if path == "/oauth/token":
                return self.auth.token(method, headers, raw_body)
            if not path.startswith("/api/v2/"):
                raise ApiError(404, "not.found", f"no resource at {path}")
            if path != HEALTH:
                self.auth.authenticate(headers)
            if not control:
                self.faults.inject(found[1].key if found else None, method)
            if found is None:
                raise ApiError(404, "not.found", f"no resource at {path}")
            rx_match, route = found
            endpoint = route.methods.get(method)
            if endpoint is None:
                raise ApiError(405, "method.not.allowed", f"HTTP {method} is not supported on {path}")
            body_optional = control or path == CHANNELS  # the SDK creates a channel with no body
            wants_body = method in {"POST", "PUT", "PATCH"} and (bool(raw_body.strip()) or not body_optional)
            body = _parse_body(raw_body) if wants_body else None
            ids = rx_match.groupdict()
            status, payload = endpoint(Request(method, query, body, ids.get("id") or "", ids.get("pid") or ""))
            if method != "GET":
                self._publish_audit()
        except ApiError as exc:
            return json_response(exc.status, exc.body(), exc.headers)
        if payload is None:
            return Response(status, None, {})
        if not control:
            raw, payload = self.faults.malform(path, payload)
            if raw is not None:
                return Response(status, raw, {"Content-Type": "application/json"})
        return json_response(status, payload)


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
