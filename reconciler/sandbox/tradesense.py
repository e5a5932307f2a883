"""TradeSenseSandbox: loopback TradeSense servers speaking recon's WBA schema, with fault knobs.

In memory only: servers, tokens, CDRs and counters are gone when it stops (a daemon restart
starts with no servers; clients create them again from their CollectorTopology).

Websocket side: tradesense_wba.WbaServer speaks docs/wba-protocol.md exactly; each member of a
server listens at `ws://127.0.0.1:<port>/wba/<server>/<primary|secondary>`.

HTTP control (LoopbackService; no auth; errors {"error": code, "message"}):

  POST   /sandbox/tradesense/servers   {name, switch, traders [{id, user, turret}], ha?, token?,
         allowTooManyTraders?} -> 200 {name, switch, primary: ws-url, secondary: ws-url|null, token,
         traders, cdrs {role: n}, knobs, planted}; > 200 traders -> 400 too_many_traders,
         a trader id twice -> 400 duplicate_trader, the name taken -> 409 conflict
  GET    /sandbox/tradesense/servers   -> {servers: [server]} (tokens are sandbox test credentials)
  GET/DELETE /sandbox/tradesense/servers/{name}   one server / remove it (its sockets close 4503)
  POST   .../{name}/cdrs  {cdrs: [{traderId, startTime, durationMs | endTime, turret?, line?,
         direction?, counterparty?, cdrId?, reportedAt?}]} -> {cdrIds: [...]}; cdrId defaults to
         "<switch>:<9-digit per-switch seq>", reportedAt to now (never earlier than the server's
         last); a trader not on the server -> 400 unknown_trader; the batch is all-or-nothing
  GET    .../{name}/cdrs?member=primary  -> {cdrs: [...]} what that member serves, in order
  GET/PUT/DELETE .../{name}/knobs  see tradesense_store.Knobs; PUT merges; DELETE clears
  POST   .../{name}/disconnect {member?, abrupt?}  close the member's (or both) sockets now:
         4503 or, abrupt, a TCP abort -> {closed: n}
  POST   .../{name}/restart {member?}  new cursor instance (old cursors -> cursor_invalid),
         sockets closed 4503; CDRs are kept -> {restarted: [roles]}
  POST   .../{name}/token {token?}  a new token (random if absent); open sessions stay -> {token}
  GET/DELETE /sandbox/tradesense/stats  {servers: {name: {role: {connections, authFailures,
         polls, framesSent, cdrsSent}}}}; DELETE zeroes
  GET    /sandbox/tradesense/health  -> {"status": "ok"}

Called by: reconciler.sandbox.daemon, reconciler.sandbox.floor and tests. Imports the stdlib,
`websockets` and sandbox siblings. Tokens are never logged.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reconciler.sandbox.tradesense_store import (
    MAX_LIMIT,
    ROLES,
    Knobs,
    TradeSenseError,
    TsServer,
    bad,
    new_server,
    now_ms,
)
from reconciler.sandbox.tradesense_wba import WbaServer
from reconciler.sandbox.transport import LoopbackService, Response, json_response
from reconciler.sandbox.wire import JsonObj, parse_iso

PREFIX = "/sandbox/tradesense"
SERVERS = PREFIX + "/servers"
STATS = PREFIX + "/stats"
HEALTH = PREFIX + "/health"
TEST_TOKEN = "sandbox-tradesense-token"
SERVER_PATH_RE = re.compile(rf"^{SERVERS}/(?P<name>[^/]+)(?:/(?P<action>cdrs|knobs|disconnect|restart|token))?$")


class TradeSenseSandbox(LoopbackService):
    """Named TradeSense servers (optionally HA pairs) on one websocket port, controlled over HTTP.

    `heartbeat_s` is the heartbeat period every server announces (small in tests); `max_limit`
    the largest poll `limit`; `default_token` the token of a server created without one.
    """

    thread_name = "tradesense-sandbox"

    def __init__(
        self, *, heartbeat_s: float = 10.0, max_limit: int = MAX_LIMIT, default_token: str = TEST_TOKEN
    ) -> None:
        if heartbeat_s <= 0 or max_limit < 1:
            raise ValueError("heartbeat_s must be > 0 and max_limit >= 1")
        self.heartbeat_s, self.max_limit, self.default_token = heartbeat_s, max_limit, default_token
        self.lock = threading.Lock()
        self._servers: dict[str, TsServer] = {}
        self._sequences: dict[str, int] = {}  # switch -> last generated cdrId sequence
        self.wba = WbaServer(self.lock, self._servers, heartbeat_s=heartbeat_s, max_limit=max_limit)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Start the websocket server (own thread and loop), then the HTTP control API; its URL."""
        self.wba.start()
        return super().start()

    def stop(self) -> None:
        """Stop both servers, close every socket and forget every server (idempotent)."""
        super().stop()
        self.wba.stop()
        with self.lock:
            self._servers.clear()

    @property
    def ws_base(self) -> str:
        return self.wba.ws_base

    # -- Python API (the control endpoints call these; so do the floor and tests) ----------------

    def create_server(self, body: Any) -> JsonObj:
        server = new_server(body, self.default_token)
        with self.lock:
            if server.name in self._servers:
                raise TradeSenseError(409, "conflict", f"a server named {server.name!r} exists")
            self._servers[server.name] = server
            return server.to_json(self.ws_base)

    def servers(self) -> list[JsonObj]:
        with self.lock:
            return [s.to_json(self.ws_base) for s in self._servers.values()]

    def server(self, name: str) -> JsonObj:
        with self.lock:
            return self._get(name).to_json(self.ws_base)

    def delete_server(self, name: str) -> JsonObj:
        with self.lock:
            server = self._servers.pop(name, None)
        if server is None:
            raise TradeSenseError(404, "not_found", f"no server named {name!r}")
        self.wba.close(server, None, abrupt=False)
        return {"deleted": name}

    def traders(self) -> dict[str, tuple[str, JsonObj]]:
        """user e-mail (lower-case) -> (server name, trader) for every trader on every server
        (the first server wins for a user on two)."""
        with self.lock:
            found: dict[str, tuple[str, JsonObj]] = {}
            for server in self._servers.values():
                for trader in server.traders.values():
                    found.setdefault(trader["user"].lower(), (server.name, dict(trader)))
            return found

    def add_cdrs(self, name: str, body: Any) -> JsonObj:
        """POST .../{name}/cdrs: append CDRs to both members (all or none)."""
        cdrs = body.get("cdrs") if isinstance(body, dict) else None
        if not isinstance(cdrs, list):
            raise bad('the request body must be {"cdrs": [...]}')
        with self.lock:
            server = self._get(name)
            sequence, now, last, fresh = self._sequences.get(server.switch, 0), now_ms(), server.last_reported, []
            taken = set(server.cdr_ids)
            for item in cdrs:
                cdr_id = item.get("cdrId") if isinstance(item, dict) else None
                if cdr_id is None:
                    sequence += 1
                    while f"{server.switch}:{sequence:09d}" in taken:
                        sequence += 1
                    cdr_id = f"{server.switch}:{sequence:09d}"
                elif not isinstance(cdr_id, str) or not cdr_id or cdr_id in taken:
                    raise bad(f"cdrId {cdr_id!r} is not a new, non-empty string", "duplicate_cdr")
                cdr = server.check_cdr(item, cdr_id, now, last)
                taken.add(cdr_id)
                last = parse_iso(cdr["reportedAt"])
                fresh.append(cdr)
            self._sequences[server.switch] = sequence
            server.append(fresh)
            return {"cdrIds": [c["cdrId"] for c in fresh]}

    def member_cdrs(self, name: str, role: str) -> list[JsonObj]:
        with self.lock:
            member = self._get(name).members.get(role)
            if member is None:
                raise TradeSenseError(404, "not_found", f"server {name!r} has no {role} member")
            return [dict(c) for c in member.log]

    def knobs(self, name: str) -> JsonObj:
        with self.lock:
            return self._get(name).knobs.to_json()

    def set_knobs(self, name: str, body: Any, *, clear: bool = False) -> JsonObj:
        """PUT merges `body` (DELETE: clear=True, back to no faults). A member newly `down` has its
        sockets closed 4503."""
        if not clear and not isinstance(body, dict):
            raise bad("the knobs must be a JSON object")
        with self.lock:
            server = self._get(name)
            knobs = Knobs() if clear else server.knobs.update(body)
            downed = [r for r in ROLES if knobs.down[r] and not server.knobs.down[r]]
            if clear or knobs.seed != server.knobs.seed:
                server.rng.seed(knobs.seed)
            server.knobs = knobs
        for role in downed:
            self.wba.close(server, role, abrupt=False)
        return knobs.to_json()

    def disconnect(self, name: str, body: Any) -> JsonObj:
        body = _object(body)
        role, abrupt = body.get("member"), body.get("abrupt", False)
        if (role is not None and role not in ROLES) or not isinstance(abrupt, bool):
            raise bad("member must be primary or secondary (or absent: both); abrupt true or false")
        with self.lock:
            server = self._get(name)
        return {"closed": self.wba.close(server, role, abrupt=abrupt)}

    def restart(self, name: str, body: Any) -> JsonObj:
        role = _object(body).get("member")
        with self.lock:
            server = self._get(name)
            roles = [r for r in server.members if role in (None, r)]
            if not roles:
                raise bad(f"server {name!r} has no member {role!r}")
            for r in roles:
                server.members[r].instance = secrets.token_hex(6)
        for r in roles:
            self.wba.close(server, r, abrupt=False)
        return {"restarted": roles}

    def rotate_token(self, name: str, body: Any) -> JsonObj:
        token = _object(body).get("token") or secrets.token_urlsafe(18)
        if not isinstance(token, str):
            raise bad("token must be a string")
        with self.lock:
            self._get(name).token = token
        return {"token": token}

    def stats(self, *, zero: bool = False) -> JsonObj:
        with self.lock:
            out = {n: {r: dict(m.stats) for r, m in s.members.items()} for n, s in self._servers.items()}
            if zero:
                for server in self._servers.values():
                    for member in server.members.values():
                        member.stats = dict.fromkeys(member.stats, 0)
        return {"servers": out}

    def _get(self, name: str) -> TsServer:
        server = self._servers.get(name)
        if server is None:
            raise TradeSenseError(404, "not_found", f"no server named {name!r}")
        return server

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Response:
        """Answer one control request (transport.py does the I/O)."""
        split = urlsplit(target)
        path, query = split.path.rstrip("/") or "/", dict(parse_qsl(split.query))
        try:
            body = _json(raw_body) if method in {"POST", "PUT"} else None
            if path == HEALTH:
                return json_response(200, {"status": "ok"})
            if path == STATS and method in {"GET", "DELETE"}:
                return json_response(200, self.stats(zero=method == "DELETE"))
            if path == SERVERS:
                if method == "GET":
                    return json_response(200, {"servers": self.servers()})
                if method == "POST":
                    return json_response(200, self.create_server(body))
                raise TradeSenseError(405, "method_not_allowed", f"use GET or POST {path}")
            match = SERVER_PATH_RE.match(path)
            if match is None:
                raise TradeSenseError(404, "not_found", f"no resource at {path}")
            return json_response(200, self._server_route(method, match["name"], match["action"], body, query))
        except TradeSenseError as error:
            return error.response()

    def _server_route(self, method: str, name: str, action: str | None, body: Any, query: dict[str, str]) -> Any:
        routes: dict[tuple[str | None, str], Any] = {
            (None, "GET"): lambda: self.server(name),
            (None, "DELETE"): lambda: self.delete_server(name),
            ("cdrs", "POST"): lambda: self.add_cdrs(name, body),
            ("cdrs", "GET"): lambda: {"cdrs": self.member_cdrs(name, query.get("member", "primary"))},
            ("knobs", "GET"): lambda: self.knobs(name),
            ("knobs", "PUT"): lambda: self.set_knobs(name, body),
            ("knobs", "DELETE"): lambda: self.set_knobs(name, None, clear=True),
            ("disconnect", "POST"): lambda: self.disconnect(name, body),
            ("restart", "POST"): lambda: self.restart(name, body),
            ("token", "POST"): lambda: self.rotate_token(name, body),
        }
        route = routes.get((action, method))
        if route is None:
            raise TradeSenseError(405, "method_not_allowed", f"{method} is not supported here")
        return route()


def _object(body: Any) -> JsonObj:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def _json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad(f"the request body is not valid JSON: {error}") from error


def tradesense_entry(sandbox: TradeSenseSandbox) -> JsonObj:
    """The endpoints.json `services.tradesense` entry of a running sandbox."""
    url = sandbox.base_url
    return {
        "url": url,
        "wsBase": sandbox.ws_base,
        "serversUrl": url + SERVERS,
        "statsUrl": url + STATS,
        "defaultToken": sandbox.default_token,
        "heartbeatSeconds": sandbox.heartbeat_s,
        "maxLimit": sandbox.max_limit,
        "protocol": "docs/wba-protocol.md",
    }
