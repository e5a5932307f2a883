"""The runtime's event intake: Genesys queue-conversation events in, one `CallStart` per call out.

`EventIntake.run(stop)` keeps notification channels open for the watched queues and hands every
call that starts on them, once, to a sink (the runtime service wires the sink to
`SnapshotInjector.on_call_start`, scheduled as its own task):

1. a channel is created (`POST /api/v2/notifications/channels`), subscribed to
   `v2.routing.queues.{id}.conversations` for each queue (at most 1,000 topics per channel; more
   queues take more channels) and its websocket connected;
2. the first event of a conversation becomes a `CallStart` (`call_start_from_event`): the
   participant is the first with purpose customer/external (else the first), `started` its
   connectedTime (else now). Later events of the same conversation are duplicates: a bounded
   `Seen` set (LRU, 100,000 ids, 24 h) suppresses them;
3. heartbeats (`channel.metadata`) are counted, not answered; no frame at all for
   `heartbeat_timeout_s` means the socket is dead;
4. on `v2.system.socket_closing`, a close, a drop or a dead socket, a NEW channel is created,
   subscribed and connected after a bounded exponential backoff with jitter (never a busy
   loop), then the gap is reconciled: the analytics details query
   (`POST /api/v2/analytics/conversations/details/query`, segmentFilters on queueId) lists the
   conversations that started from the last frame received (or the intake's start) minus
   `GAP_OVERLAP` until now, and every one not seen yet goes to the sink. Subscribing before the
   query means no call start falls between the two; the overlap is absorbed by `Seen`.

`counters` (events, call_starts, duplicates, reconnects, gap_recovered, heartbeats) feed metrics.
The EventBridge webhook (`reconciler.runtime.webhook`) shares `call_start_from_event` and `Seen`.

Called by: the runtime service, reconciler.runtime.webhook, tests. Imports the stdlib,
`websockets` and the Genesys client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from reconciler import endpoints, jsonsafe
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.errors import GenesysError
from reconciler.runtime.snapshot.injector import CallStart

log = logging.getLogger(__name__)

CHANNELS_PATH = "/api/v2/notifications/channels"
DETAILS_PATH = "/api/v2/analytics/conversations/details/query"
MAX_TOPICS = 1000
"""Genesys allows at most 1,000 topics per notification channel."""
QUEUE_PREDICATES = 50
"""Queue ids per details query (one `or` segment filter each)."""
DETAILS_PAGE = 100
MAX_PAGES = 1000
GAP_OVERLAP = dt.timedelta(seconds=5)
"""The gap query starts this long before the last frame received: clock skew, in-flight events."""
SOCKET_CLOSING = "v2.system.socket_closing"
METADATA = "channel.metadata"
QUEUE_TOPIC_RE = re.compile(r"^v2\.routing\.queues\.(?P<queue>[^.]+)\.conversations$")
CUSTOMER_PURPOSES = ("customer", "external")
MAX_MESSAGE = 1 * 2**20
"""Largest notification frame read (websockets' own default, made explicit): events are a few KB."""
COUNTERS = ("events", "call_starts", "duplicates", "reconnects", "gap_recovered", "heartbeats")


def _checked_socket(uri: str) -> str:
    """The channel's `connectUri` if the endpoint policy allows it (wss://, or ws:// on
    loopback, never a metadata address: the platform names it, recon checks it), else
    GenesysError (the intake retries with a new channel, bounded)."""
    try:
        endpoints.check(uri, "ws", what="the notification channel's connectUri")
    except endpoints.EndpointRefused as refused:
        raise GenesysError(f"refusing to connect: {refused.message}", next_step=refused.hint) from None
    return uri


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def queue_topic(queue_id: str) -> str:
    return f"v2.routing.queues.{queue_id}.conversations"


def iso(when: dt.datetime) -> str:
    """Genesys timestamp format: `2026-11-01T09:30:00.000Z`."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _pick(participants: Any, id_key: str) -> Mapping[str, Any] | None:
    """The customer/external participant (purpose order as CUSTOMER_PURPOSES), else the first."""
    if not isinstance(participants, list):
        return None
    people = [p for p in participants if isinstance(p, dict) and isinstance(p.get(id_key), str)]
    if not people:
        return None
    return next((p for p in people if p.get("purpose") in CUSTOMER_PURPOSES), people[0])


def call_start_from_event(topic: Any, body: Any, *, now: dt.datetime | None = None) -> CallStart | None:
    """The CallStart a `v2.routing.queues.{id}.conversations` event announces; None when the topic
    is another one or the body is no QueueConversationEventTopicConversation with participants."""
    match = QUEUE_TOPIC_RE.match(topic) if isinstance(topic, str) else None
    if match is None or not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        return None
    person = _pick(body.get("participants"), "id")
    if person is None:
        return None
    started = _parse_time(person.get("connectedTime")) or now or utc_now()
    return CallStart(body["id"], match["queue"], str(person["id"]), started)


def call_start_from_detail(detail: Any, queue_ids: Sequence[str]) -> CallStart | None:
    """The CallStart of one analytics conversation (details query) on one of `queue_ids`."""
    if not isinstance(detail, dict) or not isinstance(detail.get("conversationId"), str):
        return None
    participants = detail.get("participants")
    person = _pick(participants, "participantId")
    if person is None or not isinstance(participants, list):
        return None
    wanted = set(queue_ids)
    queues = [
        seg.get("queueId")
        for p in participants
        if isinstance(p, dict)
        for s in p.get("sessions") or []
        if isinstance(s, dict)
        for seg in s.get("segments") or []
        if isinstance(seg, dict) and seg.get("queueId") in wanted
    ]
    if not queues:
        return None
    started = _parse_time(detail.get("conversationStart")) or utc_now()
    return CallStart(detail["conversationId"], str(queues[0]), str(person["participantId"]), started)


class Seen:
    """Conversation ids already handed on: at most `max_ids` (least recently seen go first), each
    for at most `ttl_s` seconds. One event loop at a time (not thread-safe)."""

    def __init__(
        self, max_ids: int = 100_000, ttl_s: float = 86_400.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_ids < 1 or ttl_s <= 0:
            raise ValueError("max_ids must be >= 1 and ttl_s > 0")
        self.max_ids, self.ttl_s, self._clock = max_ids, ttl_s, clock
        self._ids: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, conversation_id: str) -> bool:
        """Remember the id; True when it was not seen (within the bounds) before."""
        now = self._clock()
        while self._ids:  # expire from the oldest end
            oldest, when = next(iter(self._ids.items()))
            if now - when < self.ttl_s:
                break
            del self._ids[oldest]
        if conversation_id in self._ids:
            self._ids.move_to_end(conversation_id)
            return False
        self._ids[conversation_id] = now
        if len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        return True


def offer(call: CallStart, seen: Seen, sink: Callable[[CallStart], None], counters: Counter[str]) -> bool:
    """Hand `call` to `sink` unless its conversation was seen; a failing sink is logged, not raised."""
    if not seen.add(call.conversation_id):
        counters["duplicates"] += 1
        return False
    counters["call_starts"] += 1
    try:
        sink(call)
    except Exception:
        log.exception("the call-start sink failed for conversation %s", call.conversation_id)
    return True


class EventIntake:
    """Queue-conversation events over notification channels, with gap reconciliation."""

    def __init__(
        self,
        client: GenesysClient,
        queue_ids: Sequence[str],
        sink: Callable[[CallStart], None],
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        heartbeat_timeout_s: float = 90.0,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        seen: Seen | None = None,
        on_ready: Callable[[Sequence[str]], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not queue_ids:
            raise ValueError("queue_ids must name at least one queue")
        if heartbeat_timeout_s <= 0 or not 0 < reconnect_initial_s <= reconnect_max_s:
            raise ValueError("heartbeat_timeout_s must be > 0 and 0 < reconnect_initial_s <= reconnect_max_s")
        self.client = client
        self.queue_ids = list(dict.fromkeys(queue_ids))
        self.sink = sink
        self.clock = clock
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.seen = seen if seen is not None else Seen()
        self.on_ready = on_ready
        """Called with the channel ids each time the sockets are connected and any gap reconciled
        (readiness probes, logs)."""
        self._rng = rng
        self.counters: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self.channel_ids: list[str] = []
        """The channels of the current connection."""
        self._last_frame: dt.datetime | None = None

    def offer(self, call: CallStart) -> bool:
        """Dedupe and hand on one call start (also the webhook's sink when both run together)."""
        return offer(call, self.seen, self.sink, self.counters)

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until `stop` is set; reconnects and reconciles gaps on its own."""
        self._last_frame = self.clock()
        attempt, connected_before, gap = 0, False, False
        while not stop.is_set():
            sockets: list[ClientConnection] = []
            try:
                sockets = await self._open()
                if connected_before:
                    self.counters["reconnects"] += 1
                connected_before = True
                if gap:  # subscribed first: a call starting now is on the socket or in the query
                    await self._reconcile()
                attempt, gap = 0, True
                if self.on_ready is not None:
                    self.on_ready(list(self.channel_ids))
                reason = await self._listen(sockets, stop)
                log.info("notification socket ended (%s); reconnecting on a new channel", reason)
            except (GenesysError, OSError, WebSocketException, TimeoutError) as exc:
                log.warning("notification intake failed (%s: %s); retrying", type(exc).__name__, exc)
                attempt, gap = attempt + 1, True
            except Exception:  # an unexpected answer must not end the intake: retry, bounded
                log.exception("notification intake failed unexpectedly; retrying")
                attempt, gap = attempt + 1, True
            finally:
                for ws in sockets:
                    with contextlib.suppress(Exception):
                        await ws.close()
            if not stop.is_set():
                await self._backoff(attempt, stop)

    async def _backoff(self, attempt: int, stop: asyncio.Event) -> None:
        delay = min(self.reconnect_max_s, self.reconnect_initial_s * 2 ** min(attempt, 30))
        delay *= 1 + 0.25 * self._rng()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    async def _open(self) -> list[ClientConnection]:
        """New channels (≤ MAX_TOPICS topics each), subscribed, each socket connected."""
        topics = [queue_topic(q) for q in self.queue_ids]
        sockets: list[ClientConnection] = []
        channel_ids: list[str] = []
        try:
            for first in range(0, len(topics), MAX_TOPICS):
                channel = await self.client.post(CHANNELS_PATH)
                channel_id, uri = str(channel["id"]), str(channel["connectUri"])
                subscribed = [{"id": t} for t in topics[first : first + MAX_TOPICS]]
                await self.client.put(f"{CHANNELS_PATH}/{channel_id}/subscriptions", json=subscribed)
                sockets.append(await connect(_checked_socket(uri), open_timeout=30, max_size=MAX_MESSAGE))
                channel_ids.append(channel_id)
        except BaseException:
            for ws in sockets:
                with contextlib.suppress(Exception):
                    await ws.close()
            raise
        self.channel_ids = channel_ids
        return sockets

    async def _listen(self, sockets: list[ClientConnection], stop: asyncio.Event) -> str:
        """Read every socket until one ends or `stop` is set; -> why it ended."""
        readers = [asyncio.create_task(self._read(ws)) for ws in sockets]
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*readers, stopper], return_when=asyncio.FIRST_COMPLETED)
            return "stop" if stopper in done else str(next(iter(done)).result())
        finally:
            for task in (*readers, stopper):
                task.cancel()
            await asyncio.gather(*readers, stopper, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> str:
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self.heartbeat_timeout_s)
            except TimeoutError:
                return f"no frame for {self.heartbeat_timeout_s:g} s: dead"
            except ConnectionClosed as closed:
                return f"closed ({closed.rcvd.code if closed.rcvd else 'no close frame'})"
            try:
                message = jsonsafe.loads(raw, what="a notification", max_bytes=MAX_MESSAGE)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            topic = message.get("topicName")
            if topic == SOCKET_CLOSING:
                return "socket_closing"
            now = self.clock()
            self._last_frame = now
            if topic == METADATA:
                self.counters["heartbeats"] += 1
                continue
            self.counters["events"] += 1
            call = call_start_from_event(topic, message.get("eventBody"), now=now)
            if call is not None:
                self.offer(call)

    async def _reconcile(self) -> None:
        """Feed the conversations that started while no socket was listening (see the module doc)."""
        since = (self._last_frame or self.clock()) - GAP_OVERLAP
        until = self.clock() + GAP_OVERLAP
        interval = f"{iso(since)}/{iso(until)}"
        for first in range(0, len(self.queue_ids), QUEUE_PREDICATES):
            queues = self.queue_ids[first : first + QUEUE_PREDICATES]
            predicates = [
                {"type": "dimension", "dimension": "queueId", "operator": "matches", "value": q} for q in queues
            ]
            for number in range(1, MAX_PAGES + 1):
                body = {
                    "interval": interval,
                    "order": "asc",
                    "orderBy": "conversationStart",
                    "paging": {"pageSize": DETAILS_PAGE, "pageNumber": number},
                    "segmentFilters": [{"type": "or", "predicates": predicates}],
                }
                page = await self.client.post(DETAILS_PATH, json=body)
                conversations = (page or {}).get("conversations") or []
                for detail in conversations:
                    call = call_start_from_detail(detail, queues)
                    if call is not None and self.offer(call):
                        self.counters["gap_recovered"] += 1
                if len(conversations) < DETAILS_PAGE:
                    break
        self._last_frame = self.clock()  # covered up to here: the sockets listen from before the query
