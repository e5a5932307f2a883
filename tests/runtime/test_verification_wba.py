"""The TradeSense WBA adapter (reconciler.runtime.verification.wba) against an in-test fake
server (tests/fake_wba.py): auth, paging, cursor_invalid and the `since` fallback, heartbeat
and poll timeouts, error frames and close codes mapped to exceptions, and JSON -> Cdr.

Hermetic: loopback, OS-picked ports. No sleeps as synchronisation: every wait is a request's
answer (or its failure) under a bounded `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from fake_wba import BASE_MS, TOKEN, FakeWba, iso, make_cdr, make_cdrs

from reconciler.runtime.verification.model import Cdr
from reconciler.runtime.verification.wba import (
    WbaBadRequest,
    WbaClient,
    WbaConnectionLost,
    WbaCursorInvalid,
    WbaError,
    WbaProtocolError,
    WbaTooManyTraders,
    WbaUnauthorized,
    WbaUnavailable,
    cdr_from_json,
    error_from_frame,
    iso_to_ms,
    ms_to_iso,
)

TIMEOUT = 10
T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), TIMEOUT)

    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def client_of(
    server: FakeWba, token: str | Callable[[], str] = TOKEN, **settings: Any
) -> AsyncIterator[WbaClient]:
    client = WbaClient(server.url, token, collector="ldn-collector-a", member=server.role, **settings)
    try:
        yield client
    finally:
        await client.close()


# --- auth --------------------------------------------------------------------------------------


def test_auth_ok_reads_the_server_and_sends_the_token_only_in_the_auth_frame() -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(2), heartbeat_s=7, max_limit=2500) as server, client_of(server) as client:
            await client.connect()
            await client.connect()  # idempotent while connected
            assert client.server is not None
            assert (client.server.name, client.server.role, client.server.switch) == (
                "tradesense-a1",
                "primary",
                "ldn-iptrade-01",
            )
            assert (client.server.heartbeat_s, client.server.max_limit, client.server.traders) == (7.0, 2500, 3)
            assert server.connections == 1
            assert server.frames[0] == {"type": "auth", "id": "1", "token": TOKEN, "client": "recon/0.1"}
            assert TOKEN not in repr(client)

    run(scenario)


@pytest.mark.parametrize(
    ("case", "token", "server_token"),
    [
        ("wrong-token", "tsk-WRONG", TOKEN),
        ("revoked-token", TOKEN, "tsk-rotated-on-the-server"),
        ("empty-token", "", TOKEN),
    ],
    ids=lambda v: v if isinstance(v, str) and v.endswith("token") else "",
)
def test_unauthorized_is_mapped_and_never_names_the_token(case: str, token: str, server_token: str) -> None:
    async def scenario() -> None:
        async with FakeWba(token=server_token) as server, client_of(server, token) as client:
            with pytest.raises(WbaUnauthorized) as raised:
                await client.connect()
            assert not client.connected
            text = str(raised.value)
            assert "unauthorized" in text and "token" in text  # says what to fix ...
            assert token == "" or token not in text  # ... without the value
            assert TOKEN not in text

    run(scenario)


def test_a_callable_token_is_resolved_at_each_connect() -> None:
    values = iter(["tsk-old", TOKEN])

    async def scenario() -> None:
        async with FakeWba() as server, client_of(server, lambda: next(values)) as client:
            with pytest.raises(WbaUnauthorized):
                await client.connect()
            await client.connect()
            assert client.connected

    run(scenario)


@pytest.mark.parametrize(
    ("case", "traders", "expected"),
    [("200-traders-served", 200, None), ("201-traders-refused", 201, WbaTooManyTraders)],
    ids=lambda v: v if isinstance(v, str) and "traders" in v else "",
)
def test_a_server_reporting_more_than_200_traders_is_refused(
    case: str, traders: int, expected: type[WbaError] | None
) -> None:
    async def scenario() -> None:
        async with FakeWba(traders=traders) as server, client_of(server) as client:
            if expected is None:
                await client.connect()
                assert client.connected
            else:
                with pytest.raises(expected):
                    await client.connect()
                assert not client.connected

    run(scenario)


@pytest.mark.parametrize("case", ["server-down-503", "nothing-listening"])
def test_an_unreachable_endpoint_is_a_lost_connection(case: str) -> None:
    async def scenario() -> None:
        if case == "server-down-503":
            async with FakeWba() as server:
                server.down = True
                async with client_of(server) as client:
                    with pytest.raises(WbaConnectionLost, match="cannot connect"):
                        await client.connect()
        else:
            with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            client = WbaClient(f"ws://127.0.0.1:{port}/wba", TOKEN, collector="c")
            with pytest.raises(WbaConnectionLost, match="cannot connect"):
                await client.connect()

    run(scenario)


# --- polling -----------------------------------------------------------------------------------


def test_paging_follows_the_cursor_while_more() -> None:
    async def scenario() -> None:
        records = make_cdrs(25)
        async with FakeWba(records) as server, client_of(server) as client:
            await client.connect()
            pages, cursor = [], None
            while True:
                batch = await client.poll(cursor, None, 10)
                pages.append(batch)
                cursor = batch.cursor
                if not batch.more:
                    break
            assert [len(p.cdrs) for p in pages] == [10, 10, 5]
            assert [p.more for p in pages] == [True, True, False]
            assert [c.cdr_id for p in pages for c in p.cdrs] == [r["cdrId"] for r in records]
            assert [q["cursor"] for q in server.polls] == [None, pages[0].cursor, pages[1].cursor]
            assert pages[-1].high_water_ms == iso_to_ms(records[-1]["reportedAt"])
            empty = await client.poll(cursor, None, 10)  # nothing new: an empty page, same position
            assert (empty.cdrs, empty.more, empty.high_water_ms) == ([], False, None)

    run(scenario)


def test_cursor_invalid_then_since_fallback() -> None:
    async def scenario() -> None:
        records = make_cdrs(20)
        async with FakeWba(records) as server, client_of(server) as client:
            await client.connect()
            with pytest.raises(WbaCursorInvalid) as raised:
                await client.poll("another-server:7", None, 100)
            assert "since" in raised.value.next_step
            assert client.connected  # an error answer does not end the connection
            since = iso_to_ms(records[12]["reportedAt"])
            batch = await client.poll(None, since, 100)
            assert [c.cdr_id for c in batch.cdrs] == [r["cdrId"] for r in records[12:]]
            assert server.polls[-1]["since"] == records[12]["reportedAt"]

    run(scenario)


def test_limit_above_max_is_lowered_and_below_one_refused() -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(5), max_limit=3) as server, client_of(server) as client:
            await client.connect()
            batch = await client.poll(None, None, 1000)
            assert (len(batch.cdrs), batch.more, server.polls[-1]["limit"]) == (3, True, 3)
            with pytest.raises(ValueError, match="limit"):
                await client.poll(None, None, 0)

    run(scenario)


def test_ping_answers_the_server_time() -> None:
    async def scenario() -> None:
        async with FakeWba() as server, client_of(server) as client:
            await client.connect()
            assert await client.ping() == BASE_MS

    run(scenario)


# --- liveness and errors -----------------------------------------------------------------------


def test_three_missed_heartbeats_mean_the_connection_is_dead() -> None:
    async def scenario() -> None:
        async with (
            FakeWba(heartbeat_s=0.05, heartbeats=False) as server,
            client_of(server, poll_timeout_s=30) as client,
        ):
            await client.connect()
            server.faults.append("silent")
            with pytest.raises(WbaConnectionLost, match="3 heartbeats missed"):
                await client.poll(None, None, 10)  # fails long before the 30 s poll timeout
            assert not client.connected

    run(scenario)


def test_heartbeats_keep_a_connection_alive_but_a_poll_still_times_out() -> None:
    async def scenario() -> None:
        async with FakeWba(heartbeat_s=0.02) as server, client_of(server, poll_timeout_s=0.3) as client:
            await client.connect()
            server.faults.append("silent")
            with pytest.raises(WbaConnectionLost, match=r"no answer to poll within 0\.3 s"):
                await client.poll(None, None, 10)
            assert client.heartbeats >= 3  # 0.3 s at 0.02 s: the watchdog (0.06 s) never fired
            assert not client.connected
            await client.connect()  # reconnects after a timeout
            assert client.connected

    run(scenario)


@pytest.mark.parametrize(
    ("fault", "expected", "detail"),
    [
        ("unavailable", WbaUnavailable, "retry"),
        ("bad_request", WbaBadRequest, "bug"),
        ("too_many_traders", WbaTooManyTraders, "split"),
        ("cursor_invalid", WbaCursorInvalid, "since"),
        ("unauthorized", WbaUnauthorized, "token"),
        ("close", WbaConnectionLost, "closed (1011)"),
        ("going_away", WbaConnectionLost, "going away (4503)"),
    ],
    ids=[
        "unavailable",
        "bad_request",
        "too_many_traders",
        "cursor_invalid",
        "unauthorized",
        "close-1011",
        "close-4503",
    ],
)
def test_error_frames_and_close_codes_map_to_exceptions(fault: str, expected: type[WbaError], detail: str) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(3), retry_after_ms=750) as server, client_of(server) as client:
            await client.connect()
            server.faults.append(fault)
            with pytest.raises(expected) as raised:
                await client.poll(None, None, 10)
            assert type(raised.value) is expected
            assert detail in str(raised.value)
            assert raised.value.retry_after_ms == (750 if fault == "unavailable" else None)

    run(scenario)


@pytest.mark.parametrize(
    ("frame", "expected", "retry"),
    [
        ({"code": "unavailable", "retryAfterMs": 500}, WbaUnavailable, 500),
        ({"code": "unavailable"}, WbaUnavailable, None),
        ({"code": "unavailable", "retryAfterMs": -1}, WbaUnavailable, None),
        ({"code": "something_new", "message": "?"}, WbaError, None),
        ({}, WbaError, None),
    ],
    ids=["retry-after", "no-retry-after", "negative-retry-after", "unknown-code", "no-code"],
)
def test_error_frame_mapping(frame: dict[str, Any], expected: type[WbaError], retry: int | None) -> None:
    error = error_from_frame({"type": "error", "id": None, **frame}, "collector c primary")
    assert type(error) is expected
    assert error.retry_after_ms == retry
    assert str(error).startswith("collector c primary: ")


# --- JSON -> Cdr -------------------------------------------------------------------------------

_FULL = {
    "cdrId": "ldn-iptrade-01:000000123",
    "traderId": "T-1001",
    "turret": "TUR-1001",
    "line": "L3",
    "direction": "out",
    "counterparty": "+44 20 7946 0001",
    "startTime": "2026-11-21T09:59:01.250Z",
    "endTime": "2026-11-21T10:00:31.250Z",
    "durationMs": 90000,
    "reportedAt": "2026-11-21T10:00:31.400Z",
}
_START = BASE_MS - 58_750


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ("TUR-1001", "L3", "out", _START, 90_000, BASE_MS + 31_400)),
        ({"durationMs": None}, ("TUR-1001", "L3", "out", _START, 90_000, BASE_MS + 31_400)),
        (
            {"startTime": "2026-11-21T09:59:01.250Z", "endTime": None, "durationMs": 1},
            ("TUR-1001", "L3", "out", _START, 1, BASE_MS + 31_400),
        ),
        ({"startTime": "2026-11-21T10:59:01.250+01:00"}, ("TUR-1001", "L3", "out", _START, 90_000, BASE_MS + 31_400)),
        ({"turret": None, "line": None, "direction": None}, ("", "", "", _START, 90_000, BASE_MS + 31_400)),
        (
            {"startTime": "2026-11-21T09:59:01.999Z", "endTime": None, "durationMs": 0},
            ("TUR-1001", "L3", "out", _START + 749, 0, BASE_MS + 31_400),
        ),
    ],
    ids=[
        "full",
        "end-time-instead-of-duration",
        "duration-without-end-time",
        "offset-zone",
        "no-description",
        "ms-exact",
    ],
)
def test_json_to_cdr(changes: dict[str, Any], expected: tuple[Any, ...]) -> None:
    item = {k: v for k, v in {**_FULL, **changes}.items() if v is not None}
    cdr, reported = cdr_from_json(item, "ldn-collector-a")
    assert (cdr.cdr_id, cdr.collector, cdr.trader_id) == ("ldn-iptrade-01:000000123", "ldn-collector-a", "T-1001")
    assert (cdr.turret, cdr.line, cdr.direction, cdr.start_ms, cdr.duration_ms, reported) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cdrId": None}, "no cdrId"),
        ({"traderId": ""}, "no traderId"),
        ({"startTime": "yesterday"}, "startTime is not an ISO time"),
        ({"reportedAt": 1795255231400}, "reportedAt is not a time"),
        ({"durationMs": None, "endTime": None}, "neither durationMs nor endTime"),
        ({"durationMs": -5}, "durationMs is negative"),
        ({"startTime": "2026-11-21T09:59:01.250"}, "startTime has no zone"),
    ],
    ids=["no-id", "empty-trader", "bad-start", "numeric-reported-at", "no-duration", "negative-duration", "no-zone"],
)
def test_json_to_cdr_refuses_what_cannot_be_a_call(changes: dict[str, Any], message: str) -> None:
    item = {k: v for k, v in {**_FULL, **changes}.items() if v is not None}
    with pytest.raises(WbaProtocolError, match=message):
        cdr_from_json(item, "c")


def test_times_round_trip_exactly() -> None:
    for epoch_ms in (0, BASE_MS, BASE_MS + 1, BASE_MS + 999, BASE_MS - 1):
        assert iso_to_ms(ms_to_iso(epoch_ms)) == epoch_ms
        assert ms_to_iso(epoch_ms) == iso(epoch_ms)


def test_a_malformed_cdr_is_rejected_not_dropped_and_the_poll_goes_on() -> None:
    async def scenario() -> None:
        bad = {**make_cdr(1), "startTime": "not-a-time"}
        async with FakeWba([make_cdr(0), bad, make_cdr(2)]) as server, client_of(server) as client:
            await client.connect()
            batch = await client.poll(None, None, 10)
            assert [c.cdr_id for c in batch.cdrs] == [make_cdr(0)["cdrId"], make_cdr(2)["cdrId"]]
            (rejected,) = batch.rejected
            assert rejected.cdr_id == bad["cdrId"] and "startTime is not an ISO time" in rejected.detail

    run(scenario)


def test_batch_carries_model_cdrs() -> None:
    async def scenario() -> None:
        async with FakeWba([make_cdr(4)]) as server, client_of(server) as client:
            await client.connect()
            [cdr] = (await client.poll(None, None, 10)).cdrs
            assert isinstance(cdr, Cdr) and cdr.end_ms == iso_to_ms(make_cdr(4)["endTime"])

    run(scenario)
