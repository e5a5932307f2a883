"""Floor: a simulated trading floor that places calls on the sandbox's Genesys org and TradeSense servers.

Each call is one queue member on one desk queue. It produces, as a recorded call on a trading
desk does, a Genesys conversation (through GenesysSandbox.add_conversations, so channels
subscribed to `v2.routing.queues.{id}.conversations` hear of it) and, when the member is a
trader on a TradeSense server (the servers' trader lists map user e-mail -> trader id and
turret), that server's CDR. Members on no TradeSense server produce a recording only
("uncovered": no collector watches them, so nothing is planted).

How a CDR and its conversation pair up: the same start (to the millisecond), the same trader
(CDR traderId <-> the conversation's agent user, via the server's trader list) and, for a good
call, the same length (CDR durationMs = conversation endTime - startTime). A CDR's direction
"in"/"out" is the conversation's "inbound"/"outbound"; turret is the trader's, line L1..L8.
Planted faults, drawn per covered call (exclusive; rates add up to at most 1):

  missing   a CDR and no conversation (the call was not recorded)          planted.missing: [cdrId]
  partial   the conversation ends 5-30 s (at most half the call) early       planted.partial: [cdrId]
  orphan    a conversation and no CDR (the switch did not report the call)   planted.orphan: [recordingId]

(recordingId = recording_export.recording_id(conversationId), what recordingmetadata answers.)

Timing. In the background (`start`) call n starts at t0 + n/rate on time.monotonic, bounded by
`count` and/or `seconds`: its conversation is added when it starts (startTime = now) and its
CDR when it ends (reportedAt = now). `stop` cancels the calls not started and reports the ones
in progress at once, so the planted lists stay exact. Synchronously (`run`, `place_calls`) the
calls keep the same spacing but lie in the past, all ended: conversations, then CDRs in end order.

HTTP (routed by genesys_server; bearer token as every /api/v2 call):

  POST   /api/v2/sandbox/floor  {queues: [name], rate: calls/s, count?, seconds? (one at least), ended?
         (true: place them at once, all ended by now, as `run` does; `recon sandbox floor`),
         endedAgoMs? (with ended: all ended at least this long ago, e.g. past the late-recording grace),
         missingRate?, partialRate?, orphanRate?, durationMs?: [min, max] (default [20000, 180000];
         partialRate > 0 needs min >= 10000), seed?} -> 200 the state; running already -> 409
  GET    /api/v2/sandbox/floor[?calls=true]  -> {running, started, plan, calls, cdrs, recordings,
         recordingsOnly, planted {missing, partial, orphan}, error} (+ "ledger": one entry per call)
  DELETE /api/v2/sandbox/floor  stop -> the state

Called by: reconciler.sandbox.genesys_server and tests. Imports only the stdlib and sandbox siblings.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler.sandbox.recording_export import recording_id
from reconciler.sandbox.store import SandboxStore
from reconciler.sandbox.tradesense import TradeSenseSandbox
from reconciler.sandbox.tradesense_store import TradeSenseError
from reconciler.sandbox.wire import ApiError, JsonObj, bad_request, iso, require_object

FLOOR = "/api/v2/sandbox/floor"
LINES = tuple(f"L{n}" for n in range(1, 9))
DEFAULT_DURATION_MS = (20_000, 180_000)
PARTIAL_CUT_MS = (5_000, 30_000)
MIN_PARTIAL_CALL_MS = 10_000
MAX_CALLS = 100_000
PLAN_KEYS = {"queues", "rate", "count", "seconds", "missingRate", "partialRate", "orphanRate", "durationMs", "seed"}


class Recorder(Protocol):
    """What the floor needs of the Genesys sandbox (GenesysSandbox)."""

    store: SandboxStore

    def add_conversations(self, body: Any) -> JsonObj: ...


def _number(body: JsonObj, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad_request(f"{key} must be a number from {low:g} to {high:g}")
    return float(value)


@dataclass(frozen=True)
class Plan:
    """The floor's knobs, checked."""

    queues: tuple[str, ...]
    rate: float
    count: int | None
    seconds: float | None
    missing_rate: float
    partial_rate: float
    orphan_rate: float
    duration_ms: tuple[int, int]
    seed: int

    @classmethod
    def from_json(cls, raw: Any) -> Plan:
        body = require_object(raw)
        unknown = set(body) - PLAN_KEYS
        if unknown:
            raise bad_request(f"unknown floor knobs {sorted(unknown)}; knobs: {sorted(PLAN_KEYS)}")
        queues = body.get("queues")
        if not isinstance(queues, list) or not queues or not all(isinstance(q, str) and q for q in queues):
            raise bad_request("queues must be a non-empty list of queue names")
        count, seconds = body.get("count"), body.get("seconds")
        if count is None and seconds is None:
            raise bad_request("give count (calls) or seconds (how long to keep placing calls), or both")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CALLS):
            raise bad_request(f"count must be an integer from 1 to {MAX_CALLS}")
        if seconds is not None:
            seconds = _number(body, "seconds", 0, 0.001, 86_400)
        missing, partial, orphan = (
            _number(body, k, 0.0, 0.0, 1.0) for k in ("missingRate", "partialRate", "orphanRate")
        )
        if missing + partial + orphan > 1.0:
            raise bad_request("missingRate + partialRate + orphanRate must not exceed 1")
        durations = body.get("durationMs", list(DEFAULT_DURATION_MS))
        if (
            not isinstance(durations, list)
            or len(durations) != 2
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in durations)
            or not 0 <= durations[0] <= durations[1]
        ):
            raise bad_request("durationMs must be [min, max] in milliseconds, 0 <= min <= max")
        if partial > 0 and durations[0] < MIN_PARTIAL_CALL_MS:
            raise bad_request(f"partialRate needs calls of at least {MIN_PARTIAL_CALL_MS} ms (durationMs min)")
        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise bad_request("seed must be an integer")
        rate = _number(body, "rate", 1.0, 0.001, 10_000)
        return cls(tuple(queues), rate, count, seconds, missing, partial, orphan, (durations[0], durations[1]), seed)

    def to_json(self) -> JsonObj:
        return {
            "queues": list(self.queues),
            "rate": self.rate,
            "count": self.count,
            "seconds": self.seconds,
            "missingRate": self.missing_rate,
            "partialRate": self.partial_rate,
            "orphanRate": self.orphan_rate,
            "durationMs": list(self.duration_ms),
            "seed": self.seed,
        }

    def calls(self) -> int:
        """How many calls the plan places: the lower of count and ceil(seconds x rate)."""
        by_time = math.ceil(self.seconds * self.rate) if self.seconds is not None else None
        return min(n for n in (self.count, by_time, MAX_CALLS) if n is not None)


@dataclass
class _Call:
    """One planned call and what it produced (its `ledger` entry)."""

    entry: JsonObj
    server: str | None
    recorded_ms: int | None  # the conversation's length; None: not recorded
    reports: bool  # a CDR is written when it ends
    end_at: float = 0.0  # monotonic time it ends (background only)


@dataclass
class _Run:
    plan: Plan
    rng: random.Random
    members: dict[str, list[str]]  # queue name -> member e-mails
    traders: dict[str, tuple[str, JsonObj]]  # e-mail -> (server, trader)
    started: str
    placed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("cdrs", "recordings", "recordingsOnly"), 0))
    planted: dict[str, list[str]] = field(default_factory=lambda: {"missing": [], "partial": [], "orphan": []})
    ledger: list[JsonObj] = field(default_factory=list)
    error: str | None = None


class Floor:
    """The floor of one Genesys sandbox (and, when given, one TradeSense sandbox). Thread-safe."""

    def __init__(self, genesys: Recorder, tradesense: TradeSenseSandbox | None = None) -> None:
        self.genesys, self.tradesense = genesys, tradesense
        self._lock = threading.RLock()
        self._run: _Run | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()

    # -- synchronous (tests) -------------------------------------------------------------------

    def configure(self, body: Any) -> JsonObj:
        """Start a new ledger with the plan `body` (no call placed); the state."""
        plan = Plan.from_json(body)
        with self._lock:
            if self.running:
                raise ApiError(409, "sandbox.floor.running", "the floor is running: DELETE it first")
            self._run = self._new_run(plan)
            return self.state()

    def place(self, body: Any) -> JsonObj:
        """POST: `{"ended": true, ...}` places the calls at once, all ended by now (`run`);
        otherwise they are placed in the background in real time (`start`)."""
        if isinstance(body, dict) and "ended" in body:
            rest = {k: v for k, v in body.items() if k not in ("ended", "endedAgoMs")}
            if body["ended"] is not True:
                if "endedAgoMs" in body:
                    raise bad_request("endedAgoMs goes with ended: true")
                return self.start(rest)
            ago = body.get("endedAgoMs", 0)
            if isinstance(ago, bool) or not isinstance(ago, int) or not 0 <= ago <= 366 * 86_400_000:
                raise bad_request("endedAgoMs must be an integer from 0 to a year in milliseconds")
            return self.run(rest, ended_ago_ms=ago)
        return self.start(body)

    def run(self, body: Any, *, ended_ago_ms: int = 0) -> JsonObj:
        """configure(body), then place the plan's calls synchronously, all ended at least
        `ended_ago_ms` ago; the state."""
        self.configure(body)
        assert self._run is not None
        self.place_calls(self._run.plan.calls(), ended_ago_ms=ended_ago_ms)
        return self.state()

    def place_calls(self, n: int, *, ended_ago_ms: int = 0) -> list[JsonObj]:
        """Place `n` more calls of the current plan at once, all ended by `ended_ago_ms` before
        now; their ledger entries (CDRs are reported now, as a switch catching up would)."""
        with self._lock:
            run = self._run
            if run is None:
                raise ApiError(409, "sandbox.floor.unconfigured", "configure the floor first")
            if self.running:
                raise ApiError(409, "sandbox.floor.running", "the floor is running: DELETE it first")
            step_ms = 1000 / run.plan.rate
            first = _now_ms() - ended_ago_ms - math.ceil(n * step_ms) - run.plan.duration_ms[1] - 1000
            calls = [self._draw(run, first + round(k * step_ms)) for k in range(n)]
            for call in calls:
                self._begin(run, call)
            for call in sorted(calls, key=lambda c: c.entry["startMs"] + c.entry["durationMs"]):
                self._end(run, call)
            return [dict(c.entry) for c in calls]

    # -- background (HTTP) ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def start(self, body: Any) -> JsonObj:
        """Place the plan's calls in a background thread at its rate; the state."""
        with self._lock:
            self.configure(body)
            self._stop.clear()
            self._done.clear()
            self._thread = threading.Thread(target=self._background, name="sandbox-floor", daemon=True)
            self._thread.start()
            return self.state()

    def stop(self) -> JsonObj:
        """Stop placing calls; calls in progress are reported now. The state."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        return self.state()

    def wait(self, timeout: float) -> bool:
        """Wait (bounded) for the background run to finish; whether it did."""
        return self._done.wait(timeout)

    def state(self, *, ledger: bool = False) -> JsonObj:
        with self._lock:
            run = self._run
            out: JsonObj = {
                "running": self.running,
                "started": run.started if run else None,
                "plan": run.plan.to_json() if run else None,
                "calls": run.placed if run else 0,
                **(run.counts if run else dict.fromkeys(("cdrs", "recordings", "recordingsOnly"), 0)),
                "planted": {k: list(v) for k, v in run.planted.items()}
                if run
                else {"missing": [], "partial": [], "orphan": []},
                "error": run.error if run else None,
            }
            if ledger:
                out["ledger"] = [dict(e) for e in run.ledger] if run else []
            return out

    def _background(self) -> None:
        run = self._run
        assert run is not None
        total, interval, t0 = run.plan.calls(), 1 / run.plan.rate, time.monotonic()
        ends: list[tuple[float, int, _Call]] = []
        try:
            n = 0
            while n < total or ends:
                next_start = t0 + n * interval if n < total else math.inf
                due = min(next_start, ends[0][0] if ends else math.inf)
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                with self._lock:
                    if next_start <= (ends[0][0] if ends else math.inf):
                        call = self._draw(run, _now_ms())
                        self._begin(run, call)
                        heapq.heappush(ends, (time.monotonic() + call.entry["durationMs"] / 1000, n, call))
                        n += 1
                    else:
                        self._end(run, heapq.heappop(ends)[2])
        except Exception as error:  # a queue or server deleted under the floor: say so in the state
            run.error = f"the floor stopped: {getattr(error, 'message', error)}"
        finally:
            with self._lock:
                for _, _, call in sorted(ends):
                    self._guarded(run, self._end, call)
            self._done.set()

    # -- calls ---------------------------------------------------------------------------------

    def _new_run(self, plan: Plan) -> _Run:
        store = self.genesys.store
        with store.lock:
            by_id = {u["id"]: str(u.get("email", "")) for u in store.data["users"].values()}
            names = {str(q.get("name")): q["id"] for q in store.data["queues"].values()}
            members: dict[str, list[str]] = {}
            for name in plan.queues:
                if name not in names:
                    raise bad_request(f"queue {name!r} does not exist")
                members[name] = sorted(by_id[u] for u in store.data["queueMembers"].get(names[name], []) if u in by_id)
                if not members[name]:
                    raise bad_request(f"queue {name!r} has no members to take calls")
        traders = self.tradesense.traders() if self.tradesense is not None else {}
        started = iso(datetime.now(UTC))
        return _Run(plan, random.Random(plan.seed), members, traders, started)

    def _draw(self, run: _Run, start_ms: int) -> _Call:
        """The next call, starting at `start_ms`; always the same eight draws."""
        rng, plan = run.rng, run.plan
        queue = rng.choice(plan.queues)
        user = rng.choice(run.members[queue])
        duration = rng.randint(*plan.duration_ms)
        line, direction = rng.choice(LINES), rng.choice(("in", "out"))
        counterparty = f"+44 20 7946 {rng.randint(0, 999):04d}"
        outcome_draw, cut_draw = rng.random(), rng.random()
        found = run.traders.get(user.lower())
        outcome = "uncovered"
        if found is not None:
            thresholds = [("missing", plan.missing_rate), ("partial", plan.partial_rate), ("orphan", plan.orphan_rate)]
            outcome, edge = "good", 0.0
            for name, rate in thresholds:
                edge += rate
                if outcome_draw < edge:
                    outcome = name
                    break
        recorded: int | None = duration
        if outcome == "missing":
            recorded = None
        elif outcome == "partial":
            low, high = PARTIAL_CUT_MS[0], max(PARTIAL_CUT_MS[0], min(PARTIAL_CUT_MS[1], duration // 2))
            recorded = duration - (low + int(cut_draw * (high - low)))
        server, trader = found if found is not None else (None, None)
        entry: JsonObj = {
            "index": run.placed,
            "queue": queue,
            "user": user,
            "server": server,
            "traderId": trader["id"] if trader else None,
            "turret": trader["turret"] if trader else None,
            "line": line,
            "direction": direction,
            "counterparty": counterparty,
            "startMs": start_ms,
            "startTime": iso(datetime.fromtimestamp(start_ms / 1000, UTC)),
            "durationMs": duration,
            "recordingMs": recorded,
            "outcome": outcome,
            "conversationId": None,
            "recordingId": None,
            "cdrId": None,
        }
        run.placed += 1
        run.ledger.append(entry)
        return _Call(entry, server, recorded, outcome not in {"orphan", "uncovered"})

    def _begin(self, run: _Run, call: _Call) -> None:
        """The call starts: its conversation, when it is recorded."""
        entry = call.entry
        if call.recorded_ms is None:
            return
        body = {
            "queue": entry["queue"],
            "users": [entry["user"]],
            "startTime": entry["startTime"],
            "durationMs": call.recorded_ms,
            "direction": "inbound" if entry["direction"] == "in" else "outbound",
        }
        [conversation_id] = self.genesys.add_conversations(body)["conversations"]
        entry.update(conversationId=conversation_id, recordingId=recording_id(conversation_id))
        run.counts["recordings"] += 1
        if entry["outcome"] == "uncovered":
            run.counts["recordingsOnly"] += 1
        elif entry["outcome"] == "orphan":
            run.planted["orphan"].append(entry["recordingId"])

    def _end(self, run: _Run, call: _Call) -> None:
        """The call ends: the switch reports it (unless planted as orphan or uncovered)."""
        entry = call.entry
        if not call.reports or call.server is None or self.tradesense is None:
            return
        cdr = {
            k: entry[k] for k in ("traderId", "turret", "line", "direction", "counterparty", "startTime", "durationMs")
        }
        [cdr_id] = self.tradesense.add_cdrs(call.server, {"cdrs": [cdr]})["cdrIds"]
        entry["cdrId"] = cdr_id
        run.counts["cdrs"] += 1
        if entry["outcome"] in {"missing", "partial"}:
            run.planted[entry["outcome"]].append(cdr_id)

    @staticmethod
    def _guarded(run: _Run, step: Callable[[_Run, _Call], None], call: _Call) -> None:
        try:
            step(run, call)
        except (ApiError, TradeSenseError) as error:
            run.error = run.error or f"the floor stopped: {getattr(error, 'message', error)}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
