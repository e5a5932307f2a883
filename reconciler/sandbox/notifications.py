"""Genesys Cloud notification channels for the sandbox: channel bookkeeping and the websocket server.

HTTP side (routed by reconciler.sandbox.genesys_server; GC shapes, SDK models Channel,
ChannelEntityListing, ChannelTopic, ChannelTopicEntityListing):

  POST   /api/v2/notifications/channels                  -> {id, connectUri: "ws://127.0.0.1:<port>/channels/<id>",
                                                             expires: now + 24h}
  GET    /api/v2/notifications/channels                  -> {entities: [channel]}
  GET    /api/v2/notifications/channels/{id}/subscriptions -> {entities: [{id: topic}]}
  PUT    (replace) / POST (add) .../subscriptions        body [{id: topic}] -> the resulting {entities}
  DELETE .../subscriptions                                -> 204, no topics left
  Unknown or expired channel -> 404; a topic not matching `v2.[A-Za-z0-9._{}-]+` -> 400 naming it;
  more than 1,000 topics on a channel -> 400.

Websocket side: one `websockets` asyncio server on 127.0.0.1 (OS port), in its own thread and
event loop. A client connects to connectUri (unknown channel -> handshake rejected with 404); one
socket per channel, so a second connection closes the first (as on Genesys). Text frames, JSON:

  event      {"topicName", "version": "2", "eventBody", "metadata": {"CorrelationId": uuid}}
  heartbeat  {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
             every `heartbeat_s` seconds; a client frame {"message": "ping"} is answered with
             {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}
  topics that produce events:
    v2.routing.queues.{queueId}.conversations   eventBody = QueueConversationEventTopicConversation
        {id, participants [{id, purpose customer|acd|agent, userId?, name?, queueId?, connectedTime,
        calls [{id, state "connected", recording true, recordingState "active", direction,
        connectedTime}]}]}, one per conversation added with `POST /api/v2/sandbox/conversations`
    v2.audits.entitytype.{EntityType}.entityid.{id}  eventBody = AuditTopicAuditLogMessage {id,
        userId, username, clientId, remoteIp, serviceName, level, eventTime, action, entityType,
        entity {id, name, selfUri?}, propertyChanges} plus `user {id, name}` and `client {id}` as
        in audit.py's AuditLogMessage; one per audit entry (every audited write, see audit.py)
    v2.system.socket_closing  {"message"}: sent by `close_sockets` before a graceful close (1000)

Delivery never blocks the publishing (HTTP handler) thread: events are handed to the loop with
`call_soon_threadsafe` and queued per connection; beyond `queue_size` queued frames an event or
heartbeat is dropped and counted. `state()` (GET /api/v2/sandbox/notifications) shows each
channel's topics, whether it is connected, `sent` (frames written) and `dropped` (frames lost to
a full queue). A channel with no socket connected gets nothing (no replay, as on Genesys).

Channels live in memory only: stop() (and so a daemon restart) drops them, as when a Genesys
channel expires, and clients create a new one. An expired channel (24h) answers 404 and refuses
sockets; an open socket is not cut at expiry.

Called by: reconciler.sandbox.genesys_server. Imports the stdlib, `websockets` and reconciler.sandbox.wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import re
import threading
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from reconciler.sandbox.conversations import participants as call_participants
from reconciler.sandbox.wire import ApiError, JsonObj, bad_request, iso, not_found, require_object
from reconciler.sandbox.ws_thread import WebSocketThread

CHANNELS = "/api/v2/notifications/channels"
CHANNEL_LIFETIME = timedelta(hours=24)
MAX_TOPICS = 1000
TOPIC_RE = re.compile(r"^v2\.[A-Za-z0-9._{}-]+$")
CHANNEL_PATH_RE = re.compile(r"^/channels/(?P<id>[^/?]+)$")
SOCKET_CLOSING = "v2.system.socket_closing"
CLOSING_MESSAGE = "The socket is closing (sandbox control); reconnect to the channel's connectUri."
HEARTBEAT = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}})
PONG = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})


@dataclass
class _Channel:
    id: str
    expires: datetime
    topics: dict[str, None] = field(default_factory=dict)  # ordered set
    conn: _Conn | None = None  # written only on the websocket loop
    sent: int = 0
    dropped: int = 0


@dataclass
class _Conn:
    ws: ServerConnection
    channel: _Channel
    queue: asyncio.Queue[str | None]  # None: close gracefully after what is queued


def event_message(topic: str, body: JsonObj) -> JsonObj:
    return {"topicName": topic, "version": "2", "eventBody": body, "metadata": {"CorrelationId": str(uuid.uuid4())}}


def _present(obj: JsonObj) -> JsonObj:
    return {k: v for k, v in obj.items() if v is not None}


def conversation_events(conversations: list[JsonObj]) -> list[tuple[str, JsonObj]]:
    """(topic, QueueConversationEventTopicConversation) for each sandbox conversation (see store.py)."""
    events = []
    for conv in conversations:
        conv_id, queue_id, started = str(conv["id"]), str(conv["queueId"]), str(conv["startTime"])
        direction = str(conv.get("direction", "inbound")).lower()
        participants = []
        for n, person in enumerate(call_participants(conv)):  # the ids every sandbox API gives
            call = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{conv_id}/{n}/call")),
                **{"state": "connected", "recording": True, "recordingState": "active", "direction": direction},
                "connectedTime": started,
            }
            participants.append({**person, "connectedTime": started, "calls": [call]})
        events.append((f"v2.routing.queues.{queue_id}.conversations", {"id": conv_id, "participants": participants}))
    return events


def audit_events(entries: list[JsonObj]) -> list[tuple[str, JsonObj]]:
    """(topic, AuditTopicAuditLogMessage) for each AuditLogMessage entry (see audit.py)."""
    events = []
    for e in entries:
        user, client = e["user"], e["client"]
        body = {
            "id": e["id"],
            "userId": user["id"],
            "username": user["name"],
            "clientId": client["id"],
            "remoteIp": e.get("remoteIp", []),
            "serviceName": e["serviceName"],
            "level": e.get("level", "USER"),
            "eventTime": e["eventDate"],
            "action": e["action"],
            "entityType": e["entityType"],
            "entity": e["entity"],
            "propertyChanges": e.get("propertyChanges", []),
            "user": {"id": user["id"], "name": user["name"]},
            "client": {"id": client["id"]},
        }
        events.append((f"v2.audits.entitytype.{e['entityType']}.entityid.{e['entity']['id']}", body))
    return events


def _parse_topics(body: Any) -> list[str]:
    if not isinstance(body, list):
        raise bad_request('request body must be a list of {"id": "<topic>"}')
    topics = []
    for item in body:
        topic = item.get("id") if isinstance(item, dict) else item
        if not isinstance(topic, str) or not TOPIC_RE.match(topic) or ".." in topic or topic.endswith("."):
            raise bad_request(f"invalid topic {topic!r}: expected v2.<resource path> such as v2.users.<id>.presence")
        topics.append(topic)
    return list(dict.fromkeys(topics))


class Notifications(WebSocketThread):
    """Notification channels, their subscriptions and the websocket server. Thread-safe."""

    thread_name = "genesys-ws"
    what = "the notifications websocket server"

    def __init__(self, *, heartbeat_s: float = 30.0, queue_size: int = 1000) -> None:
        if heartbeat_s <= 0 or queue_size < 1:
            raise ValueError("heartbeat_s must be > 0 and queue_size >= 1")
        super().__init__()
        self.heartbeat_s = heartbeat_s
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._pending: dict[ServerConnection, _Conn] = {}  # accepted, handler not yet running (loop only)

    # -- lifecycle ------------------------------------------------------------------------------

    def _serve_options(self) -> dict[str, Any]:
        return {"process_request": self._admit, "process_response": self._accepted}

    def _after_serving(self) -> None:
        self._pending.clear()

    def _after_stop(self) -> None:
        with self._lock:
            self._channels.clear()

    # -- HTTP endpoints (handler threads) ---------------------------------------------------------

    def _live(self, channel_id: str) -> _Channel | None:
        """The unexpired channel `channel_id`, if any (caller holds the lock)."""
        channel = self._channels.get(channel_id)
        return channel if channel is not None and channel.expires > datetime.now(UTC) else None

    def _channel(self, channel_id: str) -> _Channel:
        channel = self._live(channel_id)
        if channel is None:
            raise not_found("channel", channel_id)
        return channel

    def _channel_json(self, channel: _Channel) -> JsonObj:
        return {
            "id": channel.id,
            "connectUri": f"{self.ws_base}/channels/{channel.id}",
            "expires": iso(channel.expires),
        }

    def create_channel(self) -> JsonObj:
        channel = _Channel(str(uuid.uuid4()), datetime.now(UTC) + CHANNEL_LIFETIME)
        with self._lock:
            self._channels[channel.id] = channel
        return self._channel_json(channel)

    def list_channels(self) -> JsonObj:
        now = datetime.now(UTC)
        with self._lock:
            return {"entities": [self._channel_json(c) for c in self._channels.values() if c.expires > now]}

    def subscriptions(self, channel_id: str) -> JsonObj:
        with self._lock:
            return {"entities": [{"id": t} for t in self._channel(channel_id).topics]}

    def subscribe(self, channel_id: str, body: Any, *, replace: bool) -> JsonObj:
        """PUT (replace=True) or POST (add) `[{"id": topic}]`; -> the channel's topics now."""
        topics = _parse_topics(body)
        with self._lock:
            channel = self._channel(channel_id)
            merged = dict.fromkeys(topics) if replace else {**channel.topics, **dict.fromkeys(topics)}
            if len(merged) > MAX_TOPICS:
                raise ApiError(
                    400, "bad.request", f"a channel may subscribe to at most {MAX_TOPICS} topics, not {len(merged)}"
                )
            channel.topics = merged
            return {"entities": [{"id": t} for t in merged]}

    def unsubscribe_all(self, channel_id: str) -> None:
        with self._lock:
            self._channel(channel_id).topics = {}

    def state(self) -> JsonObj:
        """GET /api/v2/sandbox/notifications: each channel's topics, connection and delivery counts."""
        with self._lock:
            channels = [
                {
                    **self._channel_json(c),
                    "topics": list(c.topics),
                    "connected": c.conn is not None,
                    "sent": c.sent,
                    "dropped": c.dropped,
                }
                for c in self._channels.values()
            ]
        return {"heartbeatSeconds": self.heartbeat_s, "queueSize": self.queue_size, "channels": channels}

    def close_sockets(self, body: Any) -> JsonObj:
        """Control: {channelId?, drop?}: send v2.system.socket_closing and close (or, with drop, abort
        the TCP connection without a message) the socket of one channel or of all of them."""
        body = {} if body is None else require_object(body)
        channel_id, drop = body.get("channelId"), body.get("drop", False)
        if channel_id is not None and not isinstance(channel_id, str):
            raise bad_request("channelId must be a channel id")
        if not isinstance(drop, bool):
            raise bad_request("drop must be true or false")
        with self._lock:
            targets = [self._channel(channel_id)] if channel_id is not None else list(self._channels.values())
        loop = self._loop
        if loop is None:
            raise ApiError(503, "service.unavailable", "notifications are not running")
        try:
            closed = asyncio.run_coroutine_threadsafe(self._close(targets, drop), loop).result(timeout=5)
        except FutureTimeout as exc:
            raise ApiError(503, "service.unavailable", "the websocket loop did not answer") from exc
        return {"closed": closed, "drop": drop}

    # -- publishing (any thread) ---------------------------------------------------------------

    def publish(self, events: list[tuple[str, JsonObj]]) -> None:
        """Hand (topic, eventBody) pairs to every channel subscribed to the topic; never waits."""
        loop = self._loop
        if loop is None or not events:
            return
        with self._lock:
            routed = [(t, b, [c for c in self._channels.values() if t in c.topics]) for t, b in events]
        deliveries: list[tuple[_Channel, str]] = []
        for topic, body, channels in routed:
            if channels:
                text = json.dumps(event_message(topic, body))
                deliveries += [(c, text) for c in channels]
        if deliveries:
            with contextlib.suppress(RuntimeError):  # the loop has just closed: nobody to tell
                loop.call_soon_threadsafe(self._deliver, deliveries)

    def publish_conversations(self, conversations: list[JsonObj]) -> None:
        self.publish(conversation_events(conversations))

    def publish_audit(self, entries: list[JsonObj]) -> None:
        self.publish(audit_events(entries))

    # -- websocket loop ------------------------------------------------------------------------

    def _offer(self, conn: _Conn, text: str) -> None:
        if conn.queue.qsize() >= self.queue_size:
            conn.channel.dropped += 1
        else:
            conn.queue.put_nowait(text)

    def _deliver(self, deliveries: list[tuple[_Channel, str]]) -> None:
        for channel, text in deliveries:
            if channel.conn is not None:
                self._offer(channel.conn, text)

    async def _close(self, channels: list[_Channel], drop: bool) -> list[str]:
        closed = []
        for channel in channels:
            conn, channel.conn = channel.conn, None
            if conn is None:
                continue
            closed.append(channel.id)
            if drop:
                conn.ws.transport.abort()
            else:
                closing = event_message(SOCKET_CLOSING, {"message": CLOSING_MESSAGE})
                conn.queue.put_nowait(json.dumps(closing))
                conn.queue.put_nowait(None)
        return closed

    def _admit(self, ws: ServerConnection, request: Request) -> Response | None:
        match = CHANNEL_PATH_RE.match(request.path.split("?", 1)[0])
        with self._lock:
            live = match is not None and self._live(match["id"]) is not None
        return None if live else ws.respond(http.HTTPStatus.NOT_FOUND, "channel not found\n")

    def _accepted(self, ws: ServerConnection, request: Request, response: Response) -> None:
        """Attach the socket to its channel before the 101 goes out, so no event sent after the
        client sees the handshake is missed."""
        match = CHANNEL_PATH_RE.match(request.path.split("?", 1)[0])
        if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS or match is None:
            return
        with self._lock:
            channel = self._channels.get(match["id"])
        if channel is None:
            return
        if channel.conn is not None:  # one socket per channel: the older one is closed
            channel.conn.queue.put_nowait(None)
        channel.conn = self._pending[ws] = _Conn(ws, channel, asyncio.Queue())

    async def _handler(self, ws: ServerConnection) -> None:
        conn = self._pending.pop(ws, None)
        if conn is None:
            return
        tasks = [asyncio.create_task(self._send(conn)), asyncio.create_task(self._beat(conn))]
        try:
            async for raw in ws:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    if json.loads(raw).get("message") == "ping":
                        conn.queue.put_nowait(PONG)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            if conn.channel.conn is conn:
                conn.channel.conn = None

    async def _send(self, conn: _Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            while (text := await conn.queue.get()) is not None:
                await conn.ws.send(text)
                conn.channel.sent += 1
            await conn.ws.close(1000, "socket closing")

    async def _beat(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self._offer(conn, HEARTBEAT)
