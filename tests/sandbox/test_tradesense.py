"""The TradeSense sandbox: its control API and the WBA protocol of docs/wba-protocol.md over a
real websocket (auth, poll paging with cursor/since/limit, cursor_invalid, heartbeat, ping),
the 200-trader rule, HA pairs, every knob, disconnects, stats, and the daemon's wiring.

Hermetic: loopback, OS ports. No sleeps: every wait is on a frame or a close, bounded by
TIMEOUT. The heartbeat is 60 s except where a test sets it small, so no heartbeat slips
between a request and its answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_http import TLS
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from reconciler.sandbox import process
from reconciler.sandbox.tradesense import SERVERS, STATS, TEST_TOKEN, TradeSenseSandbox
from reconciler.sandbox.tradesense_store import MAX_TRADERS

TIMEOUT = 5
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
T0 = "2026-11-21T09:00:00.000Z"


def traders(n: int) -> list[dict[str, str]]:
    return [{"id": f"T-{1000 + k}", "user": f"trader{k}@acme.example", "turret": f"TUR-{1000 + k}"} for k in range(n)]


@pytest.fixture
def ts() -> Iterator[TradeSenseSandbox]:
    with TradeSenseSandbox(heartbeat_s=60) as sandbox:
        yield sandbox


def http(ts: TradeSenseSandbox, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, ts.base_url + path, json=body, verify=TLS)


def create(ts: TradeSenseSandbox, name: str = "ts-a", *, ha: bool = True, n: int = 3, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "switch": "ldn-iptrade-01", "traders": traders(n), "ha": ha, **extra}
    response = http(ts, "POST", SERVERS, body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def add_cdrs(ts: TradeSenseSandbox, name: str, n: int, **fields: Any) -> list[str]:
    cdrs = [{"traderId": "T-1000", "startTime": T0, "durationMs": 60_000 + k, **fields} for k in range(n)]
    response = http(ts, "POST", f"{SERVERS}/{name}/cdrs", {"cdrs": cdrs})
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["cdrIds"]
    return ids


def knobs(ts: TradeSenseSandbox, name: str, **values: Any) -> None:
    response = http(ts, "PUT", f"{SERVERS}/{name}/knobs", values)
    assert response.status_code == 200, response.text


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=TIMEOUT))
    return message


async def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await recv(ws)


async def session(url: str, token: str = TEST_TOKEN) -> ClientConnection:
    ws = await connect(url)
    answer = await ask(ws, {"type": "auth", "id": "a", "token": token, "client": "recon-test"})
    assert answer["type"] == "auth_ok", answer
    return ws


async def poll(ws: ClientConnection, rid: str, cursor: str | None = None, **extra: Any) -> dict[str, Any]:
    return await ask(ws, {"type": "poll", "id": rid, "cursor": cursor, "since": None, **extra})


async def drain(url: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every CDR a member serves, following the cursor until `more` is false."""
    ws = await session(url)
    cdrs, cursor, n = [], None, 0
    while True:
        n += 1
        answer = await poll(ws, str(n), cursor, limit=limit)
        assert answer["type"] == "cdrs", answer
        cdrs += answer["cdrs"]
        cursor = answer["cursor"]
        if not answer["more"]:
            await ws.close()
            return cdrs


async def close_code(ws: ClientConnection) -> int | None:
    await asyncio.wait_for(ws.wait_closed(), timeout=TIMEOUT)
    return ws.close_code


# -- authentication ----------------------------------------------------------------------------------


def test_auth_ok_describes_the_member_and_never_echoes_the_token(ts: TradeSenseSandbox) -> None:
    server = create(ts, token="s3cret-token-a")

    async def scenario() -> None:
        async with connect(server["secondary"]) as ws:
            await ws.send(json.dumps({"type": "auth", "id": "1", "token": "s3cret-token-a", "client": "t"}))
            text = await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert "s3cret" not in str(text)
            answer = json.loads(text)
            assert answer["type"] == "auth_ok" and answer["id"] == "1"
            assert (answer["heartbeatSeconds"], answer["maxLimit"]) == (60, 5000)
            info = answer["server"]
            assert (info["name"], info["role"], info["switch"], info["traders"]) == (
                "ts-a",
                "secondary",
                "ldn-iptrade-01",
                3,
            )
            assert ISO_MS.match(info["time"])

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("first", "code", "close"),
    [
        pytest.param({"type": "auth", "id": "1", "token": "wrong"}, "unauthorized", 4401, id="wrong-token"),
        pytest.param({"type": "auth", "id": "1"}, "unauthorized", 4401, id="no-token"),
        pytest.param({"type": "poll", "id": "1", "limit": 10}, "unauthorized", 4401, id="poll-before-auth"),
        pytest.param({"type": "ping", "id": "1"}, "unauthorized", 4401, id="ping-before-auth"),
    ],
)
def test_anything_but_a_good_auth_first_is_unauthorized_and_closed_4401(
    ts: TradeSenseSandbox, first: dict[str, Any], code: str, close: int
) -> None:
    server = create(ts)

    async def scenario() -> None:
        ws = await connect(server["primary"])
        answer = await ask(ws, first)
        assert (answer["type"], answer["id"], answer["code"]) == ("error", "1", code)
        assert await close_code(ws) == close

    asyncio.run(scenario())
    assert ts.stats()["servers"]["ts-a"]["primary"]["authFailures"] == 1


def test_a_rotated_token_refuses_the_old_one(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    rotated = http(ts, "POST", f"{SERVERS}/ts-a/token", {"token": "new-token"}).json()
    assert rotated == {"token": "new-token"}

    async def scenario() -> None:
        ws = await connect(server["primary"])
        assert (await ask(ws, {"type": "auth", "id": "1", "token": TEST_TOKEN}))["code"] == "unauthorized"
        assert await close_code(ws) == 4401
        await (await session(server["primary"], "new-token")).close()

    asyncio.run(scenario())


# -- the 200-trader rule and the control API's refusals -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param({"traders": traders(MAX_TRADERS)}, 200, None, id="200-traders-ok"),
        pytest.param({"traders": traders(MAX_TRADERS + 1)}, 400, "too_many_traders", id="201-traders-refused"),
        pytest.param({"traders": traders(2) + traders(1)}, 400, "duplicate_trader", id="trader-id-twice"),
        pytest.param({"traders": [{"id": "T-1", "user": "x@y"}]}, 400, "bad_request", id="trader-without-turret"),
        pytest.param({"name": "bad name"}, 400, "bad_request", id="name-with-space"),
        pytest.param({"switch": ""}, 400, "bad_request", id="empty-switch"),
        pytest.param({"ha": "yes"}, 400, "bad_request", id="ha-not-a-bool"),
    ],
)
def test_create_server_rules(ts: TradeSenseSandbox, body: dict[str, Any], status: int, code: str | None) -> None:
    response = http(ts, "POST", SERVERS, {"name": "ts-a", "switch": "ldn", "traders": [], **body})
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"] == code
        assert http(ts, "GET", SERVERS).json() == {"servers": []}


def test_over_limit_server_refuses_to_serve_with_too_many_traders(ts: TradeSenseSandbox) -> None:
    server = create(ts, n=MAX_TRADERS + 1, allowTooManyTraders=True)

    async def scenario() -> None:
        ws = await connect(server["primary"])
        answer = await ask(ws, {"type": "auth", "id": "1", "token": TEST_TOKEN})
        assert (answer["type"], answer["code"]) == ("error", "too_many_traders")
        assert await close_code(ws) == 1008

    asyncio.run(scenario())


def test_created_server_is_listed_and_a_second_with_its_name_conflicts(ts: TradeSenseSandbox) -> None:
    server = create(ts, ha=False)
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/wba/ts-a/primary", server["primary"])
    assert server["secondary"] is None and server["token"] == TEST_TOKEN
    assert [s["name"] for s in http(ts, "GET", SERVERS).json()["servers"]] == ["ts-a"]
    again = http(ts, "POST", SERVERS, {"name": "ts-a", "switch": "x", "traders": []})
    assert (again.status_code, again.json()["error"]) == (409, "conflict")


@pytest.mark.parametrize(
    ("cdr", "code"),
    [
        pytest.param(
            {"traderId": "T-9999", "startTime": T0, "durationMs": 1}, "unknown_trader", id="trader-not-on-server"
        ),
        pytest.param({"traderId": "T-1000", "startTime": T0}, "bad_request", id="no-duration-or-end"),
        pytest.param({"traderId": "T-1000", "startTime": "soon", "durationMs": 1}, "bad_request", id="bad-start"),
        pytest.param(
            {"traderId": "T-1000", "startTime": T0, "durationMs": 1, "endTime": T0}, "bad_request", id="end-disagrees"
        ),
        pytest.param(
            {"traderId": "T-1000", "startTime": T0, "durationMs": 1, "colour": "red"}, "bad_request", id="unknown-field"
        ),
        pytest.param(
            {"traderId": "T-1000", "startTime": T0, "durationMs": 1, "reportedAt": "2000-01-01T00:00:00Z"},
            "bad_request",
            id="reported-before-the-last",
        ),
        pytest.param(
            {"traderId": "T-1000", "startTime": T0, "durationMs": 1, "cdrId": "keep"},
            "duplicate_cdr",
            id="cdr-id-taken",
        ),
    ],
)
def test_bad_cdrs_are_refused_and_the_batch_is_all_or_nothing(
    ts: TradeSenseSandbox, cdr: dict[str, Any], code: str
) -> None:
    create(ts)
    add_cdrs(ts, "ts-a", 1, cdrId="keep")
    good = {"traderId": "T-1001", "startTime": T0, "durationMs": 5}
    response = http(ts, "POST", f"{SERVERS}/ts-a/cdrs", {"cdrs": [good, cdr]})
    assert (response.status_code, response.json()["error"]) == (400, code), response.text
    assert [c["cdrId"] for c in ts.member_cdrs("ts-a", "primary")] == ["keep"]


def test_cdr_ids_and_defaults_assigned_by_the_server(ts: TradeSenseSandbox) -> None:
    create(ts, "ts-a")
    create(ts, "ts-b")  # same switch: one sequence
    assert add_cdrs(ts, "ts-a", 2) + add_cdrs(ts, "ts-b", 1) == [
        "ldn-iptrade-01:000000001",
        "ldn-iptrade-01:000000002",
        "ldn-iptrade-01:000000003",
    ]
    response = http(
        ts,
        "POST",
        f"{SERVERS}/ts-a/cdrs",
        {"cdrs": [{"traderId": "T-1001", "startTime": T0, "endTime": "2026-11-21T09:01:30.250Z"}]},
    )
    [cdr] = ts.member_cdrs("ts-a", "primary")[-1:]
    assert cdr["cdrId"] == response.json()["cdrIds"][0]
    assert {k: cdr[k] for k in ("traderId", "turret", "line", "direction", "durationMs", "endTime")} == {
        "traderId": "T-1001",
        "turret": "TUR-1001",
        "line": "L1",
        "direction": "out",
        "durationMs": 90_250,
        "endTime": "2026-11-21T09:01:30.250Z",
    }
    assert ISO_MS.match(cdr["reportedAt"])


def test_control_api_404s(ts: TradeSenseSandbox) -> None:
    assert http(ts, "GET", f"{SERVERS}/nope").status_code == 404
    assert http(ts, "PUT", f"{SERVERS}/nope/knobs", {"skewMs": 1}).status_code == 404
    assert http(ts, "GET", "/sandbox/elsewhere").status_code == 404
    create(ts, ha=False)

    async def scenario() -> None:
        for path in ("/wba/nope/primary", "/wba/ts-a/secondary", "/elsewhere"):
            with pytest.raises(InvalidStatus) as refused:
                await connect(ts.ws_base + path)
            assert refused.value.response.status_code == 404

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"skewMs": "1"}, id="skew-not-int"),
        pytest.param({"haMismatchRate": 1.5}, id="rate-over-1"),
        pytest.param({"dropAfterFrames": 0}, id="drop-after-0"),
        pytest.param({"down": {"tertiary": True}}, id="down-unknown-member"),
        pytest.param({"slowPollMs": -1}, id="negative-slow-poll"),
        pytest.param({"wobble": 1}, id="unknown-knob"),
    ],
)
def test_bad_knobs_are_400_and_change_nothing(ts: TradeSenseSandbox, body: dict[str, Any]) -> None:
    create(ts)
    before = http(ts, "GET", f"{SERVERS}/ts-a/knobs").json()
    response = http(ts, "PUT", f"{SERVERS}/ts-a/knobs", {"skewMs": 5, **body})
    assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert http(ts, "GET", f"{SERVERS}/ts-a/knobs").json() == before


# -- polling -----------------------------------------------------------------------------------------


def test_poll_pages_with_cursor_and_more(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    ids = add_cdrs(ts, "ts-a", 7)

    async def scenario() -> None:
        ws = await session(server["primary"])
        pages, cursor = [], None
        for n in range(4):
            answer = await poll(ws, f"p{n}", cursor, limit=3)
            assert (answer["type"], answer["id"]) == ("cdrs", f"p{n}")
            pages.append(([c["cdrId"] for c in answer["cdrs"]], answer["more"]))
            cursor = answer["cursor"]
        assert pages == [(ids[:3], True), (ids[3:6], True), (ids[6:], False), ([], False)]
        more = add_cdrs(ts, "ts-a", 2)
        answer = await poll(ws, "p9", cursor, limit=3)  # the cursor resumes where it stopped
        assert ([c["cdrId"] for c in answer["cdrs"]], answer["more"]) == (more, False)
        await ws.close()

    asyncio.run(scenario())


def test_poll_with_no_limit_answers_at_most_1000(ts: TradeSenseSandbox) -> None:
    server = create(ts, ha=False)
    add_cdrs(ts, "ts-a", 1001)

    async def scenario() -> None:
        ws = await session(server["primary"])
        answer = await ask(ws, {"type": "poll", "id": "1", "cursor": None, "since": None})
        assert (len(answer["cdrs"]), answer["more"]) == (1000, True)
        await ws.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        pytest.param("2026-11-21T10:00:00.000Z", [0, 1, 2], id="at-the-first-reportedAt"),
        pytest.param("2026-11-21T10:00:00.001Z", [1, 2], id="just-after-the-first"),
        pytest.param("2026-11-21T10:05:00+00:00", [2], id="offset-form-equal-to-the-last"),
        pytest.param("2026-11-21T11:00:00Z", [], id="after-everything"),
        pytest.param("2020-01-01T00:00:00Z", [0, 1, 2], id="before-everything"),
    ],
)
def test_since_starts_at_the_first_cdr_reported_at_or_after_it(
    ts: TradeSenseSandbox, since: str, expected: list[int]
) -> None:
    server = create(ts)
    reported = ["2026-11-21T10:00:00.000Z", "2026-11-21T10:02:00.000Z", "2026-11-21T10:05:00.000Z"]
    ids = [add_cdrs(ts, "ts-a", 1, reportedAt=r)[0] for r in reported]

    async def scenario() -> None:
        ws = await session(server["secondary"])
        answer = await ask(ws, {"type": "poll", "id": "1", "cursor": None, "since": since, "limit": 10})
        assert [c["cdrId"] for c in answer["cdrs"]] == [ids[n] for n in expected]
        assert [c["reportedAt"] for c in answer["cdrs"]] == [reported[n] for n in expected]
        assert answer["more"] is False
        await ws.close()

    asyncio.run(scenario())


def _other_member(ts: TradeSenseSandbox, cursor: str) -> str:
    return cursor  # a primary cursor, offered to the secondary


def _after_restart(ts: TradeSenseSandbox, cursor: str) -> str:
    assert http(ts, "POST", f"{SERVERS}/ts-a/restart", {"member": "secondary"}).json() == {"restarted": ["secondary"]}
    return cursor


@pytest.mark.parametrize(
    ("source", "mangle"),
    [
        pytest.param("primary", _other_member, id="cursor-of-the-other-member"),
        pytest.param("secondary", _after_restart, id="cursor-from-before-a-restart"),
        pytest.param("other", lambda ts, c: c, id="cursor-of-another-server"),
        pytest.param("secondary", lambda ts, c: "not-a-cursor", id="garbage"),
        pytest.param("secondary", lambda ts, c: c[:-2], id="truncated"),
    ],
)
def test_foreign_cursors_are_cursor_invalid_and_the_socket_stays_open(
    ts: TradeSenseSandbox, source: str, mangle: Any
) -> None:
    server = create(ts)
    create(ts, "other")
    add_cdrs(ts, "ts-a", 3)
    add_cdrs(ts, "other", 3)
    urls = {
        "primary": server["primary"],
        "secondary": server["secondary"],
        "other": f"{ts.ws_base}/wba/other/secondary",
    }

    async def scenario() -> None:
        async with await session(urls[source]) as ws:
            cursor = (await poll(ws, "1", limit=2))["cursor"]
        cursor = mangle(ts, cursor)
        async with await session(server["secondary"]) as ws:
            answer = await poll(ws, "2", cursor)
            assert (answer["type"], answer["id"], answer["code"]) == ("error", "2", "cursor_invalid")
            assert (await ask(ws, {"type": "ping", "id": "3"}))["type"] == "pong"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("limit", "ok"),
    [
        pytest.param(1, True, id="1-ok"),
        pytest.param(5000, True, id="maxLimit-ok"),
        pytest.param(0, False, id="0"),
        pytest.param(5001, False, id="maxLimit+1"),
        pytest.param(-3, False, id="negative"),
        pytest.param("10", False, id="string"),
        pytest.param(True, False, id="bool"),
        pytest.param(2.5, False, id="float"),
    ],
)
def test_limit_bounds(ts: TradeSenseSandbox, limit: Any, ok: bool) -> None:
    server = create(ts, ha=False)
    add_cdrs(ts, "ts-a", 2)

    async def scenario() -> None:
        async with await session(server["primary"]) as ws:
            answer = await poll(ws, "1", limit=limit)
            if ok:
                assert (answer["type"], len(answer["cdrs"])) == ("cdrs", min(2, limit))
            else:
                assert (answer["type"], answer["code"]) == ("error", "bad_request")
                assert "5000" in answer["message"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("frame", "answer_id"),
    [
        pytest.param({"type": "poll", "limit": 1}, None, id="no-id"),
        pytest.param({"type": "ping", "id": "a"}, "a", id="id-reused"),  # "a" was the auth's id
        pytest.param({"type": "subscribe", "id": "2"}, "2", id="unknown-type"),
        pytest.param("{not json", None, id="not-json"),
        pytest.param({"type": "poll", "id": "2", "since": "yesterday"}, "2", id="bad-since"),
        pytest.param({"type": "poll", "id": "2", "cursor": 7}, "2", id="cursor-not-a-string"),
    ],
)
def test_malformed_requests_are_bad_request_and_the_socket_stays_open(
    ts: TradeSenseSandbox, frame: Any, answer_id: str | None
) -> None:
    server = create(ts)

    async def scenario() -> None:
        async with await session(server["primary"]) as ws:
            await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
            answer = await recv(ws)
            assert (answer["type"], answer["id"], answer["code"]) == ("error", answer_id, "bad_request")
            assert (await ask(ws, {"type": "ping", "id": "z"}))["type"] == "pong"

    asyncio.run(scenario())


def test_heartbeat_every_heartbeat_seconds_and_ping_pong() -> None:
    with TradeSenseSandbox(heartbeat_s=0.05) as ts:
        server = create(ts)

        async def scenario() -> None:
            async with await session(server["primary"]) as ws:
                for _ in range(2):
                    beat = await recv(ws)
                    assert set(beat) == {"type", "time"} and beat["type"] == "heartbeat" and ISO_MS.match(beat["time"])
                await ws.send(json.dumps({"type": "ping", "id": "p1"}))
                while (answer := await recv(ws))["type"] == "heartbeat":
                    pass
                assert (answer["type"], answer["id"]) == ("pong", "p1") and ISO_MS.match(answer["time"])

        asyncio.run(scenario())


# -- HA pairs and knobs ------------------------------------------------------------------------------


def test_ha_members_serve_identical_cdrs(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    add_cdrs(ts, "ts-a", 25)

    async def scenario() -> None:
        primary, secondary = await drain(server["primary"], limit=7), await drain(server["secondary"], limit=4)
        assert len(primary) == 25 and primary == secondary

    asyncio.run(scenario())


@pytest.mark.parametrize("rate", [pytest.param(1.0, id="all-mismatched"), pytest.param(0.4, id="some-mismatched")])
def test_ha_mismatch_rate_makes_the_secondary_differ_exactly_as_planted(ts: TradeSenseSandbox, rate: float) -> None:
    server = create(ts)
    knobs(ts, "ts-a", haMismatchRate=rate, seed=7)
    add_cdrs(ts, "ts-a", 40)
    planted = http(ts, "GET", f"{SERVERS}/ts-a").json()["planted"]
    omitted, altered = set(planted["haOmitted"]), set(planted["haAltered"])
    assert omitted and altered and not omitted & altered

    async def scenario() -> None:
        primary = {c["cdrId"]: c for c in await drain(server["primary"])}
        secondary = {c["cdrId"]: c for c in await drain(server["secondary"])}
        assert len(primary) == 40 and set(primary) - set(secondary) == omitted
        differ = {i for i in secondary if secondary[i] != primary[i]}
        assert differ == altered
        for cdr_id in altered:
            assert secondary[cdr_id]["durationMs"] == primary[cdr_id]["durationMs"] + 1000

    asyncio.run(scenario())


def test_duplicate_rate_resends_cdrs_already_in_the_log(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    knobs(ts, "ts-a", duplicateRate=0.5, seed=3)
    ids = add_cdrs(ts, "ts-a", 30)
    planted = http(ts, "GET", f"{SERVERS}/ts-a").json()["planted"]["duplicates"]
    assert planted["primary"] and planted["secondary"]

    async def scenario() -> None:
        for role in ("primary", "secondary"):
            served = Counter(c["cdrId"] for c in await drain(server[role], limit=9))
            assert set(served) == set(ids)
            assert served - Counter(ids) == Counter(planted[role])

    asyncio.run(scenario())


def test_skew_shifts_start_and_end_but_not_duration_or_reported_at(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    add_cdrs(ts, "ts-a", 1)
    [stored] = ts.member_cdrs("ts-a", "primary")
    knobs(ts, "ts-a", skewMs=-1500)

    async def scenario() -> None:
        [cdr] = await drain(server["secondary"])
        assert (cdr["startTime"], cdr["endTime"]) == ("2026-11-21T08:59:58.500Z", "2026-11-21T09:00:58.500Z")
        assert (cdr["durationMs"], cdr["reportedAt"]) == (stored["durationMs"], stored["reportedAt"])

    asyncio.run(scenario())
    assert http(ts, "DELETE", f"{SERVERS}/ts-a/knobs").json()["skewMs"] == 0


def test_slow_poll_delays_the_answer(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    knobs(ts, "ts-a", slowPollMs=300)

    async def scenario() -> None:
        async with await session(server["primary"]) as ws:
            began = time.monotonic()
            assert (await poll(ws, "1"))["type"] == "cdrs"
            assert time.monotonic() - began >= 0.3
            began = time.monotonic()
            assert (await ask(ws, {"type": "ping", "id": "2"}))["type"] == "pong"  # pings are not slowed

    asyncio.run(scenario())


def test_drop_after_frames_aborts_that_member_only(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    add_cdrs(ts, "ts-a", 3)
    knobs(ts, "ts-a", dropAfterFrames={"primary": 2})

    async def scenario() -> None:
        ws = await session(server["primary"])  # frame 1: auth_ok
        assert (await poll(ws, "1"))["type"] == "cdrs"  # frame 2, then the TCP connection is aborted
        assert await close_code(ws) == 1006  # no close frame
        with pytest.raises(ConnectionClosed):
            await poll(ws, "2")
        async with await session(server["secondary"]) as other:
            for n in range(3):
                assert (await poll(other, str(n)))["type"] == "cdrs"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "primary_code", "secondary_open"),
    [
        pytest.param({}, 4503, False, id="both-graceful"),
        pytest.param({"member": "primary"}, 4503, True, id="primary-graceful"),
        pytest.param({"member": "primary", "abrupt": True}, 1006, True, id="primary-abrupt"),
    ],
)
def test_disconnect_closes_current_sockets_now(
    ts: TradeSenseSandbox, body: dict[str, Any], primary_code: int, secondary_open: bool
) -> None:
    server = create(ts)

    async def scenario() -> None:
        primary, secondary = await session(server["primary"]), await session(server["secondary"])
        closed = await asyncio.to_thread(http, ts, "POST", f"{SERVERS}/ts-a/disconnect", body)
        assert closed.json() == {"closed": 1 if secondary_open else 2}
        assert await close_code(primary) == primary_code
        if secondary_open:
            assert (await ask(secondary, {"type": "ping", "id": "1"}))["type"] == "pong"
            await secondary.close()
        else:
            assert await close_code(secondary) == 4503
        await (await session(server["primary"])).close()  # reconnecting works

    asyncio.run(scenario())


def test_down_member_answers_unavailable_and_closes_4503(ts: TradeSenseSandbox) -> None:
    server = create(ts)

    async def scenario() -> None:
        open_primary = await session(server["primary"])
        await asyncio.to_thread(knobs, ts, "ts-a", down={"primary": True})
        assert await close_code(open_primary) == 4503
        ws = await connect(server["primary"])
        refused = await recv(ws)
        assert (refused["type"], refused["id"], refused["code"], refused["retryAfterMs"]) == (
            "error",
            None,
            "unavailable",
            1000,
        )
        assert await close_code(ws) == 4503
        await (await session(server["secondary"])).close()  # the partner serves
        await asyncio.to_thread(knobs, ts, "ts-a", down=False)
        await (await session(server["primary"])).close()

    asyncio.run(scenario())


def test_stats_count_connections_polls_frames_and_cdrs(ts: TradeSenseSandbox) -> None:
    server = create(ts)
    add_cdrs(ts, "ts-a", 5)

    async def scenario() -> None:
        await drain(server["primary"], limit=2)  # auth_ok + 3 polls: 4 frames, 5 CDRs

    asyncio.run(scenario())
    stats = http(ts, "GET", STATS).json()["servers"]["ts-a"]
    assert stats["primary"] == {"connections": 1, "authFailures": 0, "polls": 3, "framesSent": 4, "cdrsSent": 5}
    assert stats["secondary"]["connections"] == 0
    assert http(ts, "DELETE", STATS).json()["servers"]["ts-a"]["primary"]["polls"] == 3
    assert http(ts, "GET", STATS).json()["servers"]["ts-a"]["primary"]["polls"] == 0


def test_deleting_a_server_closes_its_sockets(ts: TradeSenseSandbox) -> None:
    server = create(ts)

    async def scenario() -> None:
        ws = await session(server["primary"])
        assert (await asyncio.to_thread(http, ts, "DELETE", f"{SERVERS}/ts-a")).json() == {"deleted": "ts-a"}
        assert await close_code(ws) == 4503
        with pytest.raises(InvalidStatus):
            await connect(server["primary"])

    asyncio.run(scenario())


# -- the daemon ---------------------------------------------------------------------------------------


def test_daemon_publishes_a_working_tradesense_service(tmp_path: Path) -> None:
    endpoints = process.up(tmp_path / "sandbox")
    try:
        entry = endpoints.services["tradesense"]
        assert entry["url"].startswith("http://127.0.0.1:") and entry["wsBase"].startswith("ws://127.0.0.1:")
        body = {"name": "ts-a", "switch": "ldn", "traders": traders(1), "ha": True}
        created = httpx.post(entry["serversUrl"], json=body, verify=TLS).json()
        assert created["primary"] == f"{entry['wsBase']}/wba/ts-a/primary"
        assert created["token"] == entry["defaultToken"]

        async def scenario() -> None:
            await (await session(created["secondary"], entry["defaultToken"])).close()

        asyncio.run(scenario())
    finally:
        assert process.down(tmp_path / "sandbox")
