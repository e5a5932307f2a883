"""The event intake against an in-process Genesys sandbox: call starts over notification channels,
dedupe, reconnects after socket_closing and drops with gap reconciliation, and the EventBridge
webhook sharing the dedupe set.

Hermetic: loopback, OS ports. No sleeps as synchronisation: every wait is on the sink's queue or
the intake's readiness queue, with a 10 s timeout. "Nothing more arrived" is proven by adding a
second call on the same socket and seeing it come next (a socket delivers in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.regions import Endpoints
from reconciler.runtime.intake import EventIntake, Seen, call_start_from_event, queue_topic
from reconciler.runtime.snapshot.injector import CallStart
from reconciler.runtime.webhook import WebhookIntake
from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.notifications import conversation_events

TIMEOUT = 10
CLOSE = "/api/v2/sandbox/notifications/close"
TRADER = "ahmed.khan@acme.example"


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=3) as sb:
        yield sb


@pytest.fixture
def api(sandbox: GenesysSandbox) -> Iterator[httpx.Client]:
    token = httpx.post(
        f"{sandbox.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(sandbox.client_id, sandbox.client_secret),
    ).json()["access_token"]
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def queue_ids(api: httpx.Client) -> dict[str, str]:
    return {q["name"]: q["id"] for q in api.get("/api/v2/routing/queues", params={"pageSize": 100}).json()["entities"]}


def add_call(api: httpx.Client, queue: str = "energy-desk-gas") -> str:
    made = api.post("/api/v2/sandbox/conversations", json={"queue": queue, "users": [TRADER]})
    assert made.status_code == 200, made.text
    [conversation] = made.json()["conversations"]
    return str(conversation)


def customer_of(api: httpx.Client, conversation: str) -> str:
    participants = api.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"]
    assert participants[0]["purpose"] in {"customer", "external"}
    return str(participants[0]["id"])


@dataclass
class Running:
    intake: EventIntake
    calls: asyncio.Queue[CallStart]
    ready: asyncio.Queue[list[str]]
    first_channels: list[str]

    async def next_call(self) -> CallStart:
        return await asyncio.wait_for(self.calls.get(), TIMEOUT)

    async def next_ready(self) -> list[str]:
        return await asyncio.wait_for(self.ready.get(), TIMEOUT)


@contextlib.asynccontextmanager
async def running(sandbox: GenesysSandbox, queues: Sequence[str], **settings: Any) -> AsyncIterator[Running]:
    """An EventIntake on `queues`, running, connected (its first readiness already taken)."""
    calls: asyncio.Queue[CallStart] = asyncio.Queue()
    ready: asyncio.Queue[list[str]] = asyncio.Queue()
    async with GenesysClient(
        Endpoints(sandbox.base_url, sandbox.base_url), sandbox.client_id, sandbox.client_secret
    ) as client:
        intake = EventIntake(client, queues, calls.put_nowait, on_ready=ready.put_nowait, **settings)
        stop = asyncio.Event()
        task = asyncio.create_task(intake.run(stop))
        try:
            yield Running(intake, calls, ready, await asyncio.wait_for(ready.get(), TIMEOUT))
        finally:
            stop.set()
            await asyncio.wait_for(task, TIMEOUT)


def test_a_new_call_reaches_the_sink_once_with_its_queue_and_customer(
    sandbox: GenesysSandbox, api: httpx.Client
) -> None:
    gas = queue_ids(api)["energy-desk-gas"]

    async def scenario() -> None:
        async with running(sandbox, [gas]) as run:
            conversation = add_call(api)
            call = await run.next_call()
            assert (call.conversation_id, call.queue_id) == (conversation, gas)
            assert call.participant_id == customer_of(api, conversation)
            assert abs(call.started - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
            # the same conversation's event again (an update), then a new call: only the new one
            [stored] = [c for c in sandbox.store.conversations() if c["id"] == conversation]
            sandbox.notifications.publish(conversation_events([stored]))
            second = add_call(api)
            assert (await run.next_call()).conversation_id == second
            assert run.calls.empty()
            counters = run.intake.counters
            assert (counters["events"], counters["call_starts"], counters["duplicates"]) == (3, 2, 1)
            assert counters["reconnects"] == 0

    asyncio.run(scenario())


def test_calls_on_an_unwatched_queue_are_not_delivered(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    ids = queue_ids(api)

    async def scenario() -> None:
        async with running(sandbox, [ids["energy-desk-gas"]]) as run:
            add_call(api, "fx-spot")
            watched = add_call(api)
            assert (await run.next_call()).conversation_id == watched
            assert run.calls.empty() and run.intake.counters["events"] == 1

    asyncio.run(scenario())


def test_socket_closing_reconnects_on_a_new_channel(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    gas = queue_ids(api)["energy-desk-gas"]

    async def scenario() -> None:
        async with running(sandbox, [gas], reconnect_initial_s=0.01) as run:
            before = add_call(api)
            assert (await run.next_call()).conversation_id == before
            [old] = run.intake.channel_ids
            assert api.post(CLOSE, json={"channelId": old}).json() == {"closed": [old], "drop": False}
            [new] = await run.next_ready()
            assert new != old
            after = add_call(api)
            assert (await run.next_call()).conversation_id == after
            assert run.calls.empty()
            counters = run.intake.counters
            assert (counters["reconnects"], counters["call_starts"], counters["gap_recovered"]) == (1, 2, 0)
            assert counters["duplicates"] == 1  # `before`, found again by the gap query's overlap

    asyncio.run(scenario())


def test_a_call_started_while_dropped_arrives_through_gap_reconciliation(
    sandbox: GenesysSandbox, api: httpx.Client
) -> None:
    gas = queue_ids(api)["energy-desk-gas"]

    async def scenario() -> None:
        # the first reconnect waits reconnect_initial_s (1-1.25 s): the call is added well before it
        async with running(sandbox, [gas], reconnect_initial_s=1.0) as run:
            [old] = run.intake.channel_ids
            assert api.post(CLOSE, json={"channelId": old, "drop": True}).json() == {"closed": [old], "drop": True}
            missed = add_call(api)
            [new] = await run.next_ready()
            assert new != old
            call = await run.next_call()
            assert (call.conversation_id, call.queue_id) == (missed, gas)
            assert call.participant_id == customer_of(api, missed)
            counters = run.intake.counters
            assert (counters["reconnects"], counters["gap_recovered"], counters["events"]) == (1, 1, 0)
            after = add_call(api)  # the new socket delivers
            assert (await run.next_call()).conversation_id == after

    asyncio.run(scenario())


def test_no_frame_for_heartbeat_timeout_means_a_dead_socket(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    gas = queue_ids(api)["energy-desk-gas"]

    async def scenario() -> None:
        # heartbeats every 30 s on the sandbox: a 0.2 s timeout declares the quiet socket dead
        async with running(sandbox, [gas], heartbeat_timeout_s=0.2, reconnect_initial_s=0.01) as run:
            [old] = run.intake.channel_ids
            [new] = await run.next_ready()
            assert new != old and run.intake.counters["reconnects"] >= 1

    asyncio.run(scenario())


def test_more_than_1000_queues_are_split_across_channels(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    gas = queue_ids(api)["energy-desk-gas"]
    queues = [gas, *(f"queue-{n}" for n in range(1000))]

    async def scenario() -> None:
        async with running(sandbox, queues) as run:
            assert len(run.first_channels) == 2
            state = api.get("/api/v2/sandbox/notifications").json()["channels"]
            topics = {c["id"]: c["topics"] for c in state}
            assert [len(topics[c]) for c in run.first_channels] == [1000, 1]
            assert topics[run.first_channels[0]][0] == queue_topic(gas)
            conversation = add_call(api)
            assert (await run.next_call()).conversation_id == conversation

    asyncio.run(scenario())


# -- conversion and dedupe --------------------------------------------------------------------------


def test_call_start_from_event_picks_the_customer_and_its_connected_time() -> None:
    body = {
        "id": "c1",
        "participants": [
            {"id": "a", "purpose": "acd", "connectedTime": "2026-11-20T09:30:01.000Z"},
            {"id": "b", "purpose": "external", "connectedTime": "2026-11-20T09:30:00.000Z"},
        ],
    }
    call = call_start_from_event(queue_topic("q1"), body)
    assert call == CallStart("c1", "q1", "b", dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    only_agents = {"id": "c2", "participants": [{"id": "x", "purpose": "agent"}, {"id": "y", "purpose": "agent"}]}
    assert call_start_from_event(queue_topic("q1"), only_agents, now=now) == CallStart("c2", "q1", "x", now)
    assert call_start_from_event("v2.users.u1.presence", body) is None
    assert call_start_from_event(queue_topic("q1"), {"id": "c3", "participants": []}) is None
    assert call_start_from_event(queue_topic("q1"), ["not", "a", "body"]) is None


def test_seen_is_bounded_by_size_and_age() -> None:
    now = [0.0]
    seen = Seen(max_ids=2, ttl_s=10, clock=lambda: now[0])
    assert seen.add("a") and seen.add("b") and not seen.add("a")
    assert seen.add("c") and len(seen) == 2  # "b" (least recently seen) went
    assert seen.add("b") and not seen.add("c")
    now[0] = 11.0
    assert seen.add("c") and len(seen) == 1  # everything older than 10 s expired


# -- the EventBridge webhook ---------------------------------------------------------------------------


def envelope(topic: str, body: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "detail-type": topic,
        "source": "aws.partner/genesys.com/cloud/org/recon",
        "detail": {"topicName": topic, "version": "2", "eventBody": body, "metadata": {"CorrelationId": "x"}},
    }


def test_webhook_accepts_envelopes_rejects_malformed_and_dedupes() -> None:
    calls: list[CallStart] = []
    event = {"id": "c1", "participants": [{"id": "p0", "purpose": "customer"}, {"id": "p1", "purpose": "acd"}]}

    async def scenario() -> None:
        webhook = WebhookIntake(calls.append)
        url = await webhook.start()
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(2):
                    assert (await http.post(url, json=envelope(queue_topic("q1"), event))).status_code == 202
                assert (await http.post(url, json=envelope("v2.users.u1.presence", {}))).status_code == 202
                bad = [b"{not json", b"[]", b'{"detail": {"eventBody": {}}}']
                for body in bad:
                    assert (await http.post(url, content=body)).status_code == 400
                no_id = envelope(queue_topic("q1"), {"participants": []})
                assert (await http.post(url, json=no_id)).status_code == 400
                assert (await http.get(url)).status_code == 405
                assert (await http.post(url.replace("/events", "/other"), json={})).status_code == 404
        finally:
            await webhook.stop()

    asyncio.run(scenario())
    assert calls == [CallStart("c1", "q1", "p0", calls[0].started)]
    # (counters checked through the shared-dedupe test below)


def test_a_call_seen_on_the_websocket_and_the_webhook_reaches_the_sink_once(
    sandbox: GenesysSandbox, api: httpx.Client
) -> None:
    gas = queue_ids(api)["energy-desk-gas"]

    async def scenario() -> None:
        async with running(sandbox, [gas]) as run:
            webhook = WebhookIntake(run.calls.put_nowait, seen=run.intake.seen)
            url = await webhook.start()
            try:
                conversation = add_call(api)
                assert (await run.next_call()).conversation_id == conversation
                [stored] = [c for c in sandbox.store.conversations() if c["id"] == conversation]
                [(topic, body)] = conversation_events([stored])
                async with httpx.AsyncClient() as http:
                    assert (await http.post(url, json=envelope(topic, body))).status_code == 202
                    fresh = {**body, "id": "only-on-the-webhook"}
                    assert (await http.post(url, json=envelope(topic, fresh))).status_code == 202
                assert (await run.next_call()).conversation_id == "only-on-the-webhook"
                assert run.calls.empty()
                assert (webhook.counters["duplicates"], webhook.counters["call_starts"]) == (1, 1)
            finally:
                await webhook.stop()

    asyncio.run(scenario())
