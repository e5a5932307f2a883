"""The TradeSense sandbox's state: servers, their HA members, CDR logs, knobs and cursors. No I/O.

A `TsServer` is one TradeSense server as a CollectorTopology collector sees it: a name, the
switch it reports for, an API user token, at most MAX_TRADERS traders {id, user, turret}, and
one member ("primary") or an HA pair ("primary" + "secondary"). Each member keeps its own CDR
log in the order it wrote them: normally identical on both members; the knobs plant the
faults a collector must survive (see `Knobs`). Everything is in memory; one lock in
TradeSenseSandbox guards it (callers hold it: nothing here locks).

CDR wire fields (docs/wba-protocol.md): cdrId, traderId, turret, line, direction, counterparty,
startTime, endTime, durationMs, reportedAt; times are ISO UTC with milliseconds and `Z`.

Cursors are opaque strings naming the server, the member, the member's instance (a random id
drawn when the member starts or is restarted) and a position in its log: a cursor from the
other member, another server or before a restart is `cursor_invalid`.

Called by: reconciler.sandbox.tradesense. Imports only the stdlib and sandbox siblings.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.sandbox.transport import Response, json_response
from reconciler.sandbox.wire import ApiError, JsonObj, iso, parse_iso

MAX_TRADERS = 200
"""The real product's limit per TradeSense server (REFERENCES.md section 4)."""
MAX_LIMIT = 5000
DEFAULT_LIMIT = 1000
ROLES = ("primary", "secondary")
DIRECTIONS = ("in", "out", "intercom")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CDR_KEYS = {"cdrId", "traderId", "turret", "line", "direction", "counterparty", "startTime", "endTime"}
CDR_KEYS |= {"durationMs", "reportedAt"}
DUPLICATE_WINDOW = 10
"""A re-sent CDR is one of the member's last this-many CDRs."""
ALTERED_MS = 1000
"""How much a mismatched secondary's altered CDR is longer than the primary's."""


class TradeSenseError(Exception):
    """A control-API refusal: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return json_response(self.status, {"error": self.code, "message": self.message})


class WbaError(Exception):
    """A WBA error answer: {"type": "error", "code", "message"}."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def bad(message: str, code: str = "bad_request") -> TradeSenseError:
    return TradeSenseError(400, code, message)


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise bad(f"{name} must be an ISO-8601 UTC time")
    try:
        moment = parse_iso(value)
    except ApiError as error:
        raise bad(f"{name}: {error.message}") from error
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise bad(f"{name} must be a number from 0 to 1")
    return float(value)


def _count(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise bad(f"{name} must be an integer >= {minimum}")
    return value


@dataclass
class Knobs:
    """Per-server faults. JSON names: skewMs (added to the startTime/endTime both members report),
    slowPollMs (each poll answer is delayed), dropAfterFrames (a member aborts the TCP connection
    once it has sent N frames on it; int for both members or {"primary": n|null, ...}), down
    (a member answers `unavailable` and closes 4503; bool for both or per member),
    haMismatchRate (share of new CDRs the secondary omits or alters: half each),
    duplicateRate (share of new CDRs after which a member re-sends one of its recent CDRs),
    seed (restarts the draws of the two rates)."""

    skew_ms: int = 0
    slow_poll_ms: int = 0
    drop_after: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(ROLES))
    down: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(ROLES, False))
    ha_mismatch_rate: float = 0.0
    duplicate_rate: float = 0.0
    seed: int = 0

    def to_json(self) -> JsonObj:
        return {
            "skewMs": self.skew_ms,
            "slowPollMs": self.slow_poll_ms,
            "dropAfterFrames": dict(self.drop_after),
            "down": dict(self.down),
            "haMismatchRate": self.ha_mismatch_rate,
            "duplicateRate": self.duplicate_rate,
            "seed": self.seed,
        }

    def update(self, body: JsonObj) -> Knobs:
        """A copy with the keys of `body` applied (TradeSenseError 400 on a bad one; nothing changes)."""
        new = Knobs(**{**self.__dict__, "drop_after": dict(self.drop_after), "down": dict(self.down)})
        for key, value in body.items():
            if key == "skewMs":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise bad("skewMs must be an integer (milliseconds, may be negative)")
                new.skew_ms = value
            elif key == "slowPollMs":
                new.slow_poll_ms = _count(value, key)
            elif key == "dropAfterFrames":
                per = value if isinstance(value, dict) else dict.fromkeys(ROLES, value)
                for role, n in _per_member(per, key).items():
                    new.drop_after[role] = None if n is None else _count(n, f"{key}.{role}", 1)
            elif key == "down":
                per = value if isinstance(value, dict) else dict.fromkeys(ROLES, value)
                for role, flag in _per_member(per, key).items():
                    if not isinstance(flag, bool):
                        raise bad(f"down.{role} must be true or false")
                    new.down[role] = flag
            elif key == "haMismatchRate":
                new.ha_mismatch_rate = _rate(value, key)
            elif key == "duplicateRate":
                new.duplicate_rate = _rate(value, key)
            elif key == "seed":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise bad("seed must be an integer")
                new.seed = value
            else:
                raise bad(f"unknown knob {key!r}; knobs: {sorted(Knobs().to_json())}")
        return new


def _per_member(value: dict[str, Any], name: str) -> dict[str, Any]:
    unknown = set(value) - set(ROLES)
    if unknown:
        raise bad(f"{name} keys must be primary or secondary, not {sorted(unknown)}")
    return value


@dataclass
class Member:
    """One member of a server: its CDR log, cursor instance and counters."""

    role: str
    instance: str = field(default_factory=lambda: secrets.token_hex(6))
    log: list[JsonObj] = field(default_factory=list)
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("connections", "authFailures", "polls", "framesSent", "cdrsSent"), 0)
    )


@dataclass
class TsServer:
    """One TradeSense server (or HA pair)."""

    name: str
    switch: str
    token: str
    traders: dict[str, JsonObj]
    members: dict[str, Member]
    over_limit: bool = False
    knobs: Knobs = field(default_factory=Knobs)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    cdr_ids: set[str] = field(default_factory=set)
    last_reported: datetime | None = None
    planted: JsonObj = field(
        default_factory=lambda: {"haOmitted": [], "haAltered": [], "duplicates": {r: [] for r in ROLES}}
    )

    def to_json(self, ws_base: str) -> JsonObj:
        urls = {role: f"{ws_base}/wba/{self.name}/{role}" for role in self.members}
        return {
            "name": self.name,
            "switch": self.switch,
            "primary": urls["primary"],
            "secondary": urls.get("secondary"),
            "token": self.token,
            "traders": list(self.traders.values()),
            "cdrs": {role: len(m.log) for role, m in self.members.items()},
            "knobs": self.knobs.to_json(),
            "planted": self.planted,
        }

    # -- writing CDRs ------------------------------------------------------------------------

    def append(self, fresh: list[JsonObj]) -> None:
        """Write checked CDRs (see `check_cdr`) to the members, planting the knobs' faults.

        Each CDR takes exactly five draws whatever the knobs (mismatch, mismatch kind, then a
        re-send draw and a pick for each member), so a seed replays the same faults."""
        for cdr in fresh:
            self.cdr_ids.add(cdr["cdrId"])
            self.last_reported = parse_iso(cdr["reportedAt"])
            mismatch, kind = self.rng.random(), self.rng.random()
            for role, member in self.members.items():
                copy = dict(cdr)
                if role == "secondary" and mismatch < self.knobs.ha_mismatch_rate:
                    if kind < 0.5:
                        self.planted["haOmitted"].append(cdr["cdrId"])
                        copy = {}
                    else:
                        self.planted["haAltered"].append(cdr["cdrId"])
                        end = parse_iso(cdr["endTime"]) + timedelta(milliseconds=ALTERED_MS)
                        copy.update(endTime=iso(end), durationMs=cdr["durationMs"] + ALTERED_MS)
                if copy:
                    member.log.append(copy)
            for role in ROLES:
                resend, pick = self.rng.random(), self.rng.random()
                member_or_none = self.members.get(role)
                if member_or_none is None or resend >= self.knobs.duplicate_rate or not member_or_none.log:
                    continue
                recent = member_or_none.log[-DUPLICATE_WINDOW:]
                again = dict(recent[int(pick * len(recent))])
                member_or_none.log.append(again)
                self.planted["duplicates"][role].append(again["cdrId"])

    def check_cdr(self, body: Any, cdr_id: str, now: datetime, last: datetime | None) -> JsonObj:
        """The wire CDR for one control-API CDR body (TradeSenseError 400 when it is not one)."""
        if not isinstance(body, dict):
            raise bad("each CDR must be a JSON object")
        unknown = set(body) - CDR_KEYS
        if unknown:
            raise bad(f"unknown CDR fields {sorted(unknown)}; fields: {sorted(CDR_KEYS)}")
        trader = self.traders.get(str(body.get("traderId")))
        if trader is None:
            raise bad(f"trader {body.get('traderId')!r} is not on server {self.name}", "unknown_trader")
        start = _time(body.get("startTime"), "startTime")
        if "durationMs" in body:
            duration = _count(body["durationMs"], "durationMs")
            if "endTime" in body and _time(body["endTime"], "endTime") != start + timedelta(milliseconds=duration):
                raise bad("endTime must be startTime + durationMs")
        elif "endTime" in body:
            duration = int((_time(body["endTime"], "endTime") - start) / timedelta(milliseconds=1))
            if duration < 0:
                raise bad("endTime is before startTime")
        else:
            raise bad("a CDR needs durationMs or endTime")
        reported = _time(body["reportedAt"], "reportedAt") if body.get("reportedAt") is not None else now
        if last is not None and reported < last:
            raise bad(
                f"reportedAt {iso(reported)} is before the server's last CDR ({iso(last)}): CDRs are written in order"
            )
        direction = body.get("direction", "out")
        if direction not in DIRECTIONS:
            raise bad(f"direction must be one of {list(DIRECTIONS)}")
        for key in ("turret", "line", "counterparty"):
            if key in body and not isinstance(body[key], str):
                raise bad(f"{key} must be a string")
        return {
            "cdrId": cdr_id,
            "traderId": trader["id"],
            "turret": body.get("turret", trader["turret"]),
            "line": body.get("line", "L1"),
            "direction": direction,
            "counterparty": body.get("counterparty", ""),
            "startTime": iso(start),
            "endTime": iso(start + timedelta(milliseconds=duration)),
            "durationMs": duration,
            "reportedAt": iso(reported),
        }

    # -- polling -----------------------------------------------------------------------------

    def poll(self, role: str, request: JsonObj, max_limit: int) -> JsonObj:
        """The `cdrs` answer (without type/id) to a poll request on member `role`; WbaError otherwise."""
        member = self.members[role]
        limit = request.get("limit", DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
            raise WbaError("bad_request", f"limit must be 1..{max_limit}")
        cursor, since = request.get("cursor"), request.get("since")
        if cursor is not None:
            if not isinstance(cursor, str):
                raise WbaError("bad_request", "cursor must be a string or null")
            position = self._position(member, cursor)
        elif since is not None:
            if not isinstance(since, str):
                raise WbaError("bad_request", "since must be an ISO time or null")
            try:
                moment = parse_iso(since)
            except ApiError as error:
                raise WbaError("bad_request", f"since: {error.message}") from error
            position = next(
                (n for n, c in enumerate(member.log) if parse_iso(c["reportedAt"]) >= moment), len(member.log)
            )
        else:
            position = 0
        batch = member.log[position : position + limit]
        end = position + len(batch)
        skew = timedelta(milliseconds=self.knobs.skew_ms)
        if skew:
            batch = [
                {
                    **c,
                    "startTime": iso(parse_iso(c["startTime"]) + skew),
                    "endTime": iso(parse_iso(c["endTime"]) + skew),
                }
                for c in batch
            ]
        else:
            batch = [dict(c) for c in batch]
        member.stats["cdrsSent"] += len(batch)
        return {"cursor": self._cursor(member, end), "more": end < len(member.log), "cdrs": batch}

    def _cursor(self, member: Member, position: int) -> str:
        raw = f"{self.name}|{member.role}|{member.instance}|{position}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _position(self, member: Member, cursor: str) -> int:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            name, role, instance, position = text.split("|")
            at = int(position)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise WbaError("cursor_invalid", "the cursor is not this server's: poll again with since") from None
        if (name, role, instance) != (self.name, member.role, member.instance) or not 0 <= at <= len(member.log):
            raise WbaError("cursor_invalid", "the cursor is not this server's: poll again with since")
        return at


def new_server(body: Any, default_token: str) -> TsServer:
    """A server from a `POST /sandbox/tradesense/servers` body (TradeSenseError 400 when invalid)."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    name, switch = body.get("name"), body.get("switch")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise bad("name must be 1-64 characters of letters, digits, '.', '_' or '-'")
    if not isinstance(switch, str) or not switch.strip():
        raise bad("switch must be a non-empty string (the switch the server reports for)")
    traders_in = body.get("traders", [])
    if not isinstance(traders_in, list):
        raise bad("traders must be a list of {id, user, turret}")
    over_limit = body.get("allowTooManyTraders", False)
    ha, token = body.get("ha", False), body.get("token", default_token)
    if not isinstance(ha, bool) or not isinstance(over_limit, bool):
        raise bad("ha and allowTooManyTraders must be true or false")
    if not isinstance(token, str) or not token:
        raise bad("token must be a non-empty string")
    if len(traders_in) > MAX_TRADERS and not over_limit:
        message = f"a TradeSense server serves at most {MAX_TRADERS} traders, not {len(traders_in)}: split it"
        raise bad(message, "too_many_traders")
    traders: dict[str, JsonObj] = {}
    for trader in traders_in:
        fields = [trader.get(k) for k in ("id", "user", "turret")] if isinstance(trader, dict) else [None]
        if not all(isinstance(f, str) and f for f in fields):
            raise bad("each trader must be {id, user, turret} (non-empty strings)")
        if trader["id"] in traders:
            raise bad(f"trader id {trader['id']!r} appears twice", "duplicate_trader")
        traders[trader["id"]] = {"id": trader["id"], "user": trader["user"], "turret": trader["turret"]}
    members = {role: Member(role) for role in (ROLES if ha else ROLES[:1])}
    return TsServer(name, switch.strip(), token, traders, members, over_limit=len(traders) > MAX_TRADERS)


def now_ms() -> datetime:
    """Now, UTC, truncated to the millisecond (the protocol's precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
