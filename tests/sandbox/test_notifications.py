"""Notification channels over websocket: channel and subscription endpoints, heartbeats, queue
conversation and audit events, the socket_closing / drop controls, and the official SDK.

Hermetic: loopback, OS ports. No sleeps: every wait is on a received frame with a 5 s timeout.
"That nothing arrived" is proven by sending a ping and seeing the pong come next: an event
published before the ping would have been queued ahead of it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sandbox_http import QUEUES, login, post
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.notifications import MAX_TOPICS, Notifications
from reconciler.sandbox.wire import parse_iso

CHANNELS = "/api/v2/notifications/channels"
CLOSE = "/api/v2/sandbox/notifications/close"
MUTATE = "/api/v2/sandbox/mutate"
TIMEOUT = 5
TRADERS = ["ahmed.khan@acme.example", "lena.berg@acme.example"]


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=3) as sb:
        yield sb


@pytest.fixture
def api(sandbox: GenesysSandbox) -> Iterator[httpx.Client]:
    with login(sandbox.base_url) as client:
        yield client


def queues(api: httpx.Client) -> dict[str, str]:
    """name -> id of the seeded queues."""
    return {q["name"]: q["id"] for q in api.get(QUEUES, params={"pageSize": 100}).json()["entities"]}


def channel(api: httpx.Client, *topics: str) -> dict[str, Any]:
    created = api.post(CHANNELS)
    assert created.status_code == 200, created.text
    body: dict[str, Any] = created.json()
    if topics:
        subscribed = api.put(f"{CHANNELS}/{body['id']}/subscriptions", json=[{"id": t} for t in topics])
        assert subscribed.status_code == 200, subscribed.text
    return body


def queue_topic(queue_id: str) -> str:
    return f"v2.routing.queues.{queue_id}.conversations"


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=TIMEOUT))
    return message


async def assert_quiet(ws: ClientConnection) -> None:
    """Nothing is queued for this socket: a ping is answered by the very next frame."""
    await ws.send(json.dumps({"message": "ping"}))
    assert await recv(ws) == {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}


def topics_of(response: httpx.Response) -> list[str]:
    return [t["id"] for t in response.json()["entities"]]


# -- channels and subscriptions ---------------------------------------------------------------------


def test_create_channel_answers_a_connectable_uri(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    created = channel(api)
    assert set(created) == {"id", "connectUri", "expires"}
    assert re.fullmatch(rf"ws://127\.0\.0\.1:\d+/channels/{created['id']}", created["connectUri"])
    expected_expiry = datetime.now(UTC) + timedelta(hours=24)
    assert abs(parse_iso(created["expires"]) - expected_expiry) < timedelta(minutes=1)
    assert created["expires"].endswith("Z")
    assert api.get(CHANNELS).json() == {"entities": [created]}

    async def scenario() -> None:
        async with connect(created["connectUri"]) as ws:
            await assert_quiet(ws)

    asyncio.run(scenario())


def test_subscriptions_put_replaces_post_adds_get_lists_delete_clears(api: httpx.Client) -> None:
    subs = f"{CHANNELS}/{channel(api)['id']}/subscriptions"
    a, b, c = "v2.routing.queues.q1.conversations", "v2.audits.entitytype.Queue.entityid.q1", "v2.users.u1.presence"
    assert topics_of(api.get(subs)) == []
    assert topics_of(api.put(subs, json=[{"id": a}, {"id": b}])) == [a, b]
    assert topics_of(api.post(subs, json=[{"id": c}, {"id": a}])) == [a, b, c]  # a is not doubled
    assert topics_of(api.get(subs)) == [a, b, c]
    assert topics_of(api.put(subs, json=[{"id": c}])) == [c]
    deleted = api.delete(subs)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert topics_of(api.get(subs)) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
def test_unknown_channel_is_404(api: httpx.Client, method: str) -> None:
    body = [{"id": "v2.users.u1.presence"}] if method in {"PUT", "POST"} else None
    response = api.request(method, f"{CHANNELS}/no-such-channel/subscriptions", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not.found" and "no-such-channel" in response.json()["message"]


TOO_MANY = [{"id": f"v2.users.u{n}.presence"} for n in range(MAX_TOPICS + 1)]


@pytest.mark.parametrize(
    ("method", "body", "named"),
    [
        pytest.param("PUT", [{"id": "routing.queues.q1.conversations"}], "routing.queues.q1", id="no-v2-prefix"),
        pytest.param("PUT", [{"id": "v2.users.u 1.presence"}], "v2.users.u 1", id="space-in-topic"),
        pytest.param("POST", [{"id": "v2.routing.queues..conversations"}], "queues..conv", id="empty-segment"),
        pytest.param("PUT", [{"id": "v2.users.u1.presence"}, {"id": 7}], "7", id="id-not-a-string"),
        pytest.param("PUT", {"id": "v2.users.u1.presence"}, "list", id="body-not-a-list"),
        pytest.param("PUT", TOO_MANY, str(MAX_TOPICS), id="put-over-1000-topics"),
    ],
)
def test_bad_topics_are_400_naming_the_problem(api: httpx.Client, method: str, body: Any, named: str) -> None:
    subs = f"{CHANNELS}/{channel(api, 'v2.users.keep.presence')['id']}/subscriptions"
    response = api.request(method, subs, json=body)
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]
    assert topics_of(api.get(subs)) == ["v2.users.keep.presence"]  # unchanged


def test_post_past_1000_topics_is_400_and_changes_nothing(api: httpx.Client) -> None:
    subs = f"{CHANNELS}/{channel(api)['id']}/subscriptions"
    assert len(topics_of(api.put(subs, json=TOO_MANY[:MAX_TOPICS]))) == MAX_TOPICS
    response = api.post(subs, json=[{"id": "v2.users.one-more.presence"}])
    assert response.status_code == 400 and str(MAX_TOPICS) in response.json()["message"]
    assert len(topics_of(api.get(subs))) == MAX_TOPICS


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-token"), pytest.param({"Authorization": "Bearer forged"}, id="unknown-token")],
)
def test_channel_creation_needs_a_bearer_token(sandbox: GenesysSandbox, headers: dict[str, str]) -> None:
    response = post(f"{sandbox.base_url}{CHANNELS}", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "bad.credentials"


def test_websocket_to_an_unknown_channel_is_refused_with_404(api: httpx.Client) -> None:
    uri = channel(api)["connectUri"].rsplit("/", 1)[0] + "/no-such-channel"

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(uri):
                pass
        assert refused.value.response.status_code == 404

    asyncio.run(scenario())


# -- heartbeats ---------------------------------------------------------------------------------------


def test_periodic_heartbeat_at_heartbeat_s() -> None:
    with GenesysSandbox(None, seed=3, notifications=Notifications(heartbeat_s=0.05)) as sb, login(sb.base_url) as api:
        uri = channel(api)["connectUri"]

        async def scenario() -> None:
            async with connect(uri) as ws:
                for _ in range(2):
                    beat = await recv(ws)
                    assert beat == {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}

        asyncio.run(scenario())


# -- events -------------------------------------------------------------------------------------------


def test_new_conversations_reach_only_the_channel_subscribed_to_their_queue(api: httpx.Client) -> None:
    ids = queues(api)
    gas, fx = ids["energy-desk-gas"], ids["fx-spot"]
    on_gas, on_fx = channel(api, queue_topic(gas)), channel(api, queue_topic(fx))
    users = {u["email"]: u["id"] for u in api.get("/api/v2/users", params={"pageSize": 100}).json()["entities"]}

    async def scenario() -> None:
        async with connect(on_gas["connectUri"]) as gas_ws, connect(on_fx["connectUri"]) as fx_ws:
            await assert_quiet(gas_ws)  # registered server-side before anything is published
            await assert_quiet(fx_ws)  # registered server-side before anything is published
            start = "2026-11-20T09:30:00.000Z"
            body = {"queue": "energy-desk-gas", "users": TRADERS, "startTime": start, "count": 2}
            made = api.post("/api/v2/sandbox/conversations", json=body)
            assert made.status_code == 200, made.text
            events = [await recv(gas_ws), await recv(gas_ws)]
            assert [e["eventBody"]["id"] for e in events] == made.json()["conversations"]
            first = events[0]
            assert (first["topicName"], first["version"]) == (queue_topic(gas), "2")
            assert re.fullmatch(r"[0-9a-f-]{36}", first["metadata"]["CorrelationId"])
            parts = first["eventBody"]["participants"]
            assert [p["purpose"] for p in parts] == ["customer", "acd", "agent", "agent"]
            assert [p.get("userId") for p in parts[2:]] == [users[t] for t in TRADERS]
            assert all(p["queueId"] == gas for p in parts[1:])
            assert {p["connectedTime"] for p in parts} == {start}
            for part in parts:
                [call] = part["calls"]
                assert (call["state"], call["recording"], call["recordingState"], call["direction"]) == (
                    "connected",
                    True,
                    "active",
                    "inbound",
                )
            await assert_quiet(fx_ws)
            await assert_quiet(gas_ws)

    asyncio.run(scenario())


def _mutate_over_http(sandbox: GenesysSandbox, api: httpx.Client, queue_id: str) -> str:
    body = {"collection": "queues", "id": queue_id, "changes": {"description": "edited"}, "changedBy": "jane"}
    assert api.post(MUTATE, json=body).status_code == 200
    return "jane"


def _mutate_in_process(sandbox: GenesysSandbox, api: httpx.Client, queue_id: str) -> str:
    sandbox.mutate("queues", queue_id, {"description": "edited"}, changed_by="jane")
    return "jane"


def _put_through_the_api(sandbox: GenesysSandbox, api: httpx.Client, queue_id: str) -> str:
    queue = api.get(f"{QUEUES}/{queue_id}").json()
    assert api.put(f"{QUEUES}/{queue_id}", json={**queue, "description": "edited"}).status_code == 200
    return sandbox.client_id


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_mutate_over_http, id="sandbox-mutate-endpoint"),
        pytest.param(_mutate_in_process, id="GenesysSandbox.mutate"),
        pytest.param(_put_through_the_api, id="PUT-routing-queue"),
    ],
)
def test_queue_change_sends_an_audit_event(sandbox: GenesysSandbox, api: httpx.Client, change: Any) -> None:
    ids = queues(api)
    watched, other = ids["fx-spot"], ids["fx-options"]
    topic = f"v2.audits.entitytype.Queue.entityid.{watched}"
    watcher = channel(api, topic)

    async def scenario() -> None:
        async with connect(watcher["connectUri"]) as ws:
            await assert_quiet(ws)  # registered server-side before anything is published
            change(sandbox, api, other)  # not subscribed: no event
            actor = change(sandbox, api, watched)
            event = await recv(ws)
            assert event["topicName"] == topic
            body = event["eventBody"]
            assert (body["action"], body["entityType"], body["serviceName"]) == ("Update", "Queue", "Routing")
            assert (body["entity"]["id"], body["entity"]["name"]) == (watched, "fx-spot")
            assert (body["userId"], body["user"]["id"], body["user"]["name"]) == (actor, actor, actor)
            assert body["clientId"] == body["client"]["id"]
            assert "description" in [c["property"] for c in body["propertyChanges"]]
            assert parse_iso(body["eventTime"]) <= datetime.now(UTC)
            await assert_quiet(ws)

    asyncio.run(scenario())


def test_a_slow_client_loses_events_beyond_queue_size_and_the_loss_is_counted() -> None:
    with GenesysSandbox(None, seed=3, notifications=Notifications(queue_size=3)) as sb, login(sb.base_url) as api:
        gas = queues(api)["energy-desk-gas"]
        watcher = channel(api, queue_topic(gas))

        async def scenario() -> None:
            async with connect(watcher["connectUri"]) as ws:
                await assert_quiet(ws)  # the server has registered this socket before any event is published
                body = {"queue": "energy-desk-gas", "users": TRADERS[:1], "count": 10}
                made = api.post("/api/v2/sandbox/conversations", json=body).json()["conversations"]
                received = [(await recv(ws))["eventBody"]["id"] for _ in range(3)]
                assert received == made[:3]
                await assert_quiet(ws)
                [state] = api.get("/api/v2/sandbox/notifications").json()["channels"]
                assert (state["id"], state["connected"], state["dropped"]) == (watcher["id"], True, 7)
                assert state["sent"] >= 4 and state["topics"] == [queue_topic(gas)]

        asyncio.run(scenario())


# -- closing ------------------------------------------------------------------------------------------


def test_socket_closing_control_sends_the_message_then_closes_and_the_channel_survives(api: httpx.Client) -> None:
    created = channel(api, "v2.users.u1.presence")

    async def scenario() -> None:
        async with connect(created["connectUri"]) as ws:
            await assert_quiet(ws)  # registered server-side before anything is published
            closed = api.post(CLOSE, json={"channelId": created["id"]})
            assert closed.json() == {"closed": [created["id"]], "drop": False}
            message = await recv(ws)
            assert message["topicName"] == "v2.system.socket_closing" and message["eventBody"]["message"]
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), timeout=TIMEOUT)
            assert ws.close_code == 1000
        async with connect(created["connectUri"]) as again:  # reconnect to the same channel
            await assert_quiet(again)
        assert topics_of(api.get(f"{CHANNELS}/{created['id']}/subscriptions")) == ["v2.users.u1.presence"]

    asyncio.run(scenario())


def test_drop_control_closes_abruptly_without_a_message(api: httpx.Client) -> None:
    created, bystander = channel(api), channel(api)

    async def scenario() -> None:
        async with connect(created["connectUri"]) as ws, connect(bystander["connectUri"]) as other:
            await assert_quiet(ws)  # registered server-side before anything is published
            await assert_quiet(other)  # registered server-side before anything is published
            closed = api.post(CLOSE, json={"channelId": created["id"], "drop": True})
            assert closed.json() == {"closed": [created["id"]], "drop": True}
            with pytest.raises(ConnectionClosedError) as dropped:
                await asyncio.wait_for(ws.recv(), timeout=TIMEOUT)
            assert dropped.value.rcvd is None  # no close frame, no socket_closing
            await assert_quiet(other)

    asyncio.run(scenario())


def test_close_without_channel_id_closes_every_socket(api: httpx.Client) -> None:
    first, second = channel(api), channel(api)

    async def scenario() -> None:
        async with connect(first["connectUri"]) as one, connect(second["connectUri"]) as two:
            await assert_quiet(one)  # registered server-side before anything is published
            await assert_quiet(two)  # registered server-side before anything is published
            assert sorted(api.post(CLOSE).json()["closed"]) == sorted([first["id"], second["id"]])
            for ws in (one, two):
                assert (await recv(ws))["topicName"] == "v2.system.socket_closing"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"channelId": "no-such-channel"}, 404, id="unknown-channel"),
        pytest.param({"drop": "yes"}, 400, id="drop-not-a-bool"),
        pytest.param({"channelId": 5}, 400, id="channel-id-not-a-string"),
    ],
)
def test_close_control_rejects_bad_requests(api: httpx.Client, body: dict[str, Any], status: int) -> None:
    assert api.post(CLOSE, json=body).status_code == status


def test_a_second_socket_on_a_channel_closes_the_first(api: httpx.Client) -> None:
    uri = channel(api)["connectUri"]

    async def scenario() -> None:
        async with connect(uri) as first, connect(uri) as second:
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(first.recv(), timeout=TIMEOUT)
            await assert_quiet(second)

    asyncio.run(scenario())


def test_stop_drops_channels(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    channel(api)
    sandbox.stop()
    sandbox.start()
    with login(sandbox.base_url) as fresh:
        assert fresh.get(CHANNELS).json() == {"entities": []}


# -- the official SDK ---------------------------------------------------------------------------------


def test_sdk_creates_a_channel_and_subscribes(sandbox: GenesysSandbox) -> None:
    sdk = pytest.importorskip("PureCloudPlatformClientV2")
    config = sdk.configuration
    saved = {k: copy.copy(v) for k, v in vars(config).items() if k in {"host", "api_client", "access_token"}}
    try:
        client = sdk.ApiClient(host=sandbox.base_url)
        client.get_client_credentials_token(sandbox.client_id, sandbox.client_secret)
        notifications = sdk.NotificationsApi(client)
        created = notifications.post_notifications_channels()
        assert isinstance(created, sdk.Channel)
        assert created.connect_uri.endswith(f"/channels/{created.id}") and created.expires.tzinfo is not None
        topic = sdk.ChannelTopic()
        topic.id = "v2.routing.queues.q1.conversations"
        listing = notifications.put_notifications_channel_subscriptions(created.id, [topic])
        assert isinstance(listing, sdk.ChannelTopicEntityListing)
        assert [t.id for t in listing.entities] == [topic.id]
        fetched = notifications.get_notifications_channel_subscriptions(created.id)
        assert [t.id for t in fetched.entities] == [topic.id]
        assert [c.id for c in notifications.get_notifications_channels().entities] == [created.id]
    finally:
        for key, value in saved.items():
            setattr(config, key, value)
