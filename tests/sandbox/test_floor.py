"""The floor simulator: calls become recorded Genesys conversations and TradeSense CDRs that pair
up (same trader, same start, same length), with the planted missing / partial / orphan calls
exactly as the floor reports them, checked against what the two sandboxes actually hold.

Hermetic: loopback, OS ports. No sleeps: synchronous runs place calls in the past at once;
background runs are awaited with Floor.wait (bounded); websocket frames with a 5 s timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sandbox_http import login
from websockets.asyncio.client import connect

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.recording_export import recording_id
from reconciler.sandbox.tradesense import TradeSenseSandbox
from reconciler.sandbox.wire import parse_iso

TIMEOUT = 5
FLOOR = "/api/v2/sandbox/floor"
ENERGY = ["energy-desk-gas", "energy-desk-power", "energy-desk-carbon"]
TRADERS = [  # manifests/examples/energy-desk-eu/collectors.yaml
    {"id": "T-1001", "user": "ahmed.khan@acme.example", "turret": "TUR-1001"},
    {"id": "T-1002", "user": "lena.berg@acme.example", "turret": "TUR-1002"},
    {"id": "T-1003", "user": "omar.said@acme.example", "turret": "TUR-1003"},
]
MORE_TRADERS = [  # a second server: the other energy regulars
    {"id": "T-2001", "user": "olivia.brooks@acme.example", "turret": "TUR-2001"},
    {"id": "T-2002", "user": "michael.weiss@acme.example", "turret": "TUR-2002"},
]


@pytest.fixture
def sandboxes() -> Iterator[tuple[GenesysSandbox, TradeSenseSandbox]]:
    with TradeSenseSandbox(heartbeat_s=60) as ts, GenesysSandbox(None, seed=3, tradesense=ts) as genesys:
        ts.create_server({"name": "ts-a", "switch": "ldn-iptrade-01", "traders": TRADERS, "ha": True})
        ts.create_server({"name": "ts-b", "switch": "ldn-iptrade-02", "traders": MORE_TRADERS})
        yield genesys, ts


def ms(text: str) -> int:
    return int(parse_iso(text).timestamp() * 1000)


def floor_conversations(genesys: GenesysSandbox, seeded: int) -> list[dict[str, Any]]:
    return genesys.store.conversations()[seeded:]


def test_floor_plants_exactly_what_it_reports(sandboxes: tuple[GenesysSandbox, TradeSenseSandbox]) -> None:
    genesys, ts = sandboxes
    seeded = len(genesys.store.conversations())
    plan = {"queues": ENERGY, "rate": 20, "count": 300, "missingRate": 0.1, "partialRate": 0.1, "orphanRate": 0.1}
    state = genesys.floor.run({**plan, "seed": 11})
    planted = state["planted"]
    assert all(planted.values()), planted  # 300 calls: each kind happens

    trader_user = {t["id"]: t["user"] for t in TRADERS + MORE_TRADERS}
    cdrs = [c for name in ("ts-a", "ts-b") for c in ts.member_cdrs(name, "primary")]
    conversations = floor_conversations(genesys, seeded)
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for conv in conversations:
        [agent] = [p for p in conv["participants"] if p["purpose"] == "agent"]
        by_key[(agent["email"], ms(conv["startTime"]))] = conv
    paired: set[str] = set()
    missing: list[str] = []
    partial: list[str] = []
    for cdr in cdrs:
        found = by_key.get((trader_user[cdr["traderId"]], ms(cdr["startTime"])))
        if found is None:
            missing.append(cdr["cdrId"])
            continue
        conv = found
        paired.add(conv["id"])
        recorded = ms(conv["endTime"]) - ms(conv["startTime"])
        assert cdr["direction"] == {"inbound": "in", "outbound": "out"}[conv["direction"]]
        if recorded == cdr["durationMs"]:
            continue
        assert cdr["durationMs"] - recorded >= 5000, cdr  # "more than a few seconds"
        partial.append(cdr["cdrId"])
    traders = {t["user"] for t in TRADERS + MORE_TRADERS}
    orphans, uncovered = [], 0
    for key, conv in by_key.items():
        if conv["id"] in paired:
            continue
        if key[0] in traders:
            orphans.append(recording_id(conv["id"]))
        else:
            uncovered += 1
    assert (sorted(missing), sorted(partial), sorted(orphans)) == (
        sorted(planted["missing"]),
        sorted(planted["partial"]),
        sorted(planted["orphan"]),
    )
    assert (state["calls"], state["cdrs"], state["recordings"]) == (300, len(cdrs), len(conversations))
    assert state["recordingsOnly"] == uncovered > 0
    assert state["cdrs"] + uncovered + len(orphans) - len(missing) == state["recordings"]


def test_a_good_call_pairs_by_trader_start_and_length(sandboxes: tuple[GenesysSandbox, TradeSenseSandbox]) -> None:
    genesys, ts = sandboxes
    genesys.floor.run({"queues": ["energy-desk-gas"], "rate": 5, "count": 60, "durationMs": [30_000, 90_000]})
    ledger = genesys.floor.state(ledger=True)["ledger"]
    good = [e for e in ledger if e["outcome"] == "good"]
    assert good
    cdrs = {c["cdrId"]: c for c in ts.member_cdrs("ts-a", "primary") + ts.member_cdrs("ts-b", "primary")}
    for entry in good:
        conv = genesys.store.conversation(entry["conversationId"])
        cdr = cdrs[entry["cdrId"]]
        assert cdr["startTime"] == conv["startTime"] == entry["startTime"]
        assert cdr["durationMs"] == ms(conv["endTime"]) - ms(conv["startTime"]) == entry["durationMs"]
        assert 30_000 <= cdr["durationMs"] <= 90_000
        assert (cdr["traderId"], cdr["turret"]) == (entry["traderId"], entry["turret"])
        assert cdr["line"] in {f"L{n}" for n in range(1, 9)}
        assert parse_iso(cdr["reportedAt"]) >= parse_iso(cdr["endTime"])  # reported when it ended
    starts = [ms(e["startTime"]) for e in ledger]
    assert {b - a for a, b in itertools.pairwise(starts)} <= {199, 200, 201}  # the steady 5/s


def test_ha_pair_gets_the_floors_cdrs_on_both_members(sandboxes: tuple[GenesysSandbox, TradeSenseSandbox]) -> None:
    genesys, ts = sandboxes
    genesys.floor.run({"queues": ENERGY, "rate": 10, "count": 50})
    assert ts.member_cdrs("ts-a", "primary") == ts.member_cdrs("ts-a", "secondary") != []


def test_without_tradesense_the_floor_records_only() -> None:
    with GenesysSandbox(None, seed=3) as genesys:
        state = genesys.floor.run({"queues": ["fx-spot"], "rate": 1, "count": 10, "missingRate": 0.5})
    assert (state["calls"], state["recordings"], state["recordingsOnly"], state["cdrs"]) == (10, 10, 10, 0)
    assert state["planted"] == {"missing": [], "partial": [], "orphan": []}


def test_the_same_seed_places_the_same_calls(sandboxes: tuple[GenesysSandbox, TradeSenseSandbox]) -> None:
    genesys, _ = sandboxes
    plan = {"queues": ENERGY, "rate": 10, "count": 40, "missingRate": 0.2, "orphanRate": 0.2, "seed": 5}
    keys = ("queue", "user", "traderId", "line", "direction", "durationMs", "recordingMs", "outcome")
    runs = []
    for _ in range(2):
        genesys.floor.run(plan)
        runs.append([tuple(e[k] for k in keys) for e in genesys.floor.state(ledger=True)["ledger"]])
    assert runs[0] == runs[1]


def test_floor_conversations_reach_the_queue_notification_channel(
    sandboxes: tuple[GenesysSandbox, TradeSenseSandbox],
) -> None:
    genesys, _ = sandboxes
    with login(genesys.base_url) as api:
        queues = {
            q["name"]: q["id"] for q in api.get("/api/v2/routing/queues", params={"pageSize": 100}).json()["entities"]
        }
        topic = f"v2.routing.queues.{queues['energy-desk-power']}.conversations"
        created = api.post("/api/v2/notifications/channels").json()
        api.put(f"/api/v2/notifications/channels/{created['id']}/subscriptions", json=[{"id": topic}])

    async def scenario() -> None:
        async with connect(created["connectUri"]) as ws:
            await ws.send(json.dumps({"message": "ping"}))  # registered before anything is published
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["eventBody"]["message"] == "pong"
            state = await asyncio.to_thread(
                genesys.floor.run, {"queues": ["energy-desk-power"], "rate": 10, "count": 12, "missingRate": 0.25}
            )
            ledger = (await asyncio.to_thread(genesys.floor.state, ledger=True))["ledger"]
            expected = [e["conversationId"] for e in ledger if e["conversationId"]]
            assert len(expected) == state["recordings"] == 12 - len(state["planted"]["missing"])
            events = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in expected]
            assert [e["eventBody"]["id"] for e in events] == expected
            assert {e["topicName"] for e in events} == {topic}

    asyncio.run(scenario())


# -- over HTTP, in the background -------------------------------------------------------------------------


def test_background_floor_over_http(sandboxes: tuple[GenesysSandbox, TradeSenseSandbox]) -> None:
    genesys, ts = sandboxes
    with login(genesys.base_url) as api:
        plan = {
            "queues": ENERGY,
            "rate": 200,
            "count": 30,
            "durationMs": [1, 40],
            "missingRate": 0.3,
            "orphanRate": 0.3,
        }
        started = api.post(FLOOR, json=plan)
        assert started.status_code == 200, started.text
        assert genesys.floor.wait(TIMEOUT)
        state = api.get(FLOOR, params={"calls": "true"}).json()
    assert (state["running"], state["calls"], state["error"]) == (False, 30, None)
    ledger = state.pop("ledger")
    cdr_ids = {c["cdrId"] for c in ts.member_cdrs("ts-a", "primary") + ts.member_cdrs("ts-b", "primary")}
    assert cdr_ids == {e["cdrId"] for e in ledger if e["cdrId"]}
    assert sorted(state["planted"]["missing"]) == sorted(e["cdrId"] for e in ledger if e["outcome"] == "missing")
    assert state["planted"]["orphan"] == [e["recordingId"] for e in ledger if e["outcome"] == "orphan"]
    for entry in ledger:  # started when placed: startTime is the wall clock of the call's start
        if entry["conversationId"]:
            conv = genesys.store.conversation(entry["conversationId"])
            assert conv["startTime"] == entry["startTime"]


def test_delete_stops_the_floor_and_reports_calls_in_progress(
    sandboxes: tuple[GenesysSandbox, TradeSenseSandbox],
) -> None:
    genesys, _ = sandboxes
    with login(genesys.base_url) as api:
        plan = {"queues": ENERGY, "rate": 50, "seconds": 600, "durationMs": [600_000, 600_000]}
        assert api.post(FLOOR, json=plan).status_code == 200
        assert api.get(FLOOR).json()["running"] is True
        again = api.post(FLOOR, json=plan)
        assert (again.status_code, again.json()["code"]) == (409, "sandbox.floor.running")
        stopped = api.delete(FLOOR).json()
    assert stopped["running"] is False
    ledger = genesys.floor.state(ledger=True)["ledger"]
    covered = [e for e in ledger if e["outcome"] == "good"]
    assert all(e["cdrId"] for e in covered)  # ten-minute calls, reported at the stop
    assert stopped["cdrs"] == len(covered)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param({"rate": 1, "count": 1}, "queues", id="no-queues"),
        pytest.param({"queues": ["nope"], "rate": 1, "count": 1}, "nope", id="unknown-queue"),
        pytest.param({"queues": ENERGY, "rate": 1}, "count", id="neither-count-nor-seconds"),
        pytest.param({"queues": ENERGY, "rate": 0, "count": 1}, "rate", id="rate-0"),
        pytest.param({"queues": ENERGY, "count": 0}, "count", id="count-0"),
        pytest.param(
            {"queues": ENERGY, "count": 1, "missingRate": 0.6, "orphanRate": 0.6}, "exceed 1", id="rates-over-1"
        ),
        pytest.param({"queues": ENERGY, "count": 1, "durationMs": [5, 1]}, "durationMs", id="durations-reversed"),
        pytest.param(
            {"queues": ENERGY, "count": 1, "partialRate": 0.1, "durationMs": [1, 5]},
            "partialRate",
            id="partial-short-calls",
        ),
        pytest.param({"queues": ENERGY, "count": 1, "speed": 2}, "speed", id="unknown-knob"),
    ],
)
def test_bad_plans_are_400_naming_the_problem(
    sandboxes: tuple[GenesysSandbox, TradeSenseSandbox], body: Any, named: str
) -> None:
    genesys, _ = sandboxes
    with login(genesys.base_url) as api:
        response = api.post(FLOOR, json=body)
        assert response.status_code == 400, response.text
        assert named in response.json()["message"]
        assert api.get(FLOOR).json()["running"] is False


def test_add_conversations_takes_a_duration_and_direction(sandboxes: tuple[GenesysSandbox, TradeSenseSandbox]) -> None:
    genesys, _ = sandboxes
    start = "2026-11-20T09:30:00.250Z"
    body = {"queue": "fx-spot", "users": [], "startTime": start, "durationMs": 1500, "direction": "outbound"}
    [made] = genesys.add_conversations(body)["conversations"]
    conv = genesys.store.conversation(made)
    assert (conv["endTime"], conv["direction"]) == ("2026-11-20T09:30:01.750Z", "outbound")
    [default] = genesys.add_conversations({"queue": "fx-spot", "users": [], "startTime": start})["conversations"]
    conv = genesys.store.conversation(default)
    assert parse_iso(conv["endTime"]) - parse_iso(conv["startTime"]) == timedelta(seconds=60)
    assert conv["direction"] == "inbound"
