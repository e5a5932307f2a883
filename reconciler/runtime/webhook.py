"""EventBridge-style delivery of Genesys events: a small HTTP endpoint feeding the same sink path.

Where the Genesys Cloud EventBridge integration (relayed by an API destination or a forwarder)
is the event source instead of a notification channel, `WebhookIntake` accepts
`POST /events` with the EventBridge envelope
`{"detail-type": ..., "detail": {"topicName": "v2.routing.queues.{id}.conversations",
"eventBody": {...}}}` and turns it into a `CallStart` with the intake's own
`call_start_from_event`, deduplicated by a `Seen` set (pass `EventIntake.seen` to share it, so a
call seen on both paths reaches the sink once).

Answers: 202 accepted (also for a valid envelope of another topic, which is ignored); 400 for a
body that is not JSON, not an envelope, or a queue-conversation event without an id or
participants; 404 for another path; 405 for another method; 413 beyond `MAX_BODY` bytes.

An asyncio server on the caller's event loop (so the sink runs on the same loop as the
websocket intake): `await start()` -> its URL, `await stop()`.

Called by: the runtime service, tests. Imports the stdlib and reconciler.runtime.intake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus

from reconciler import jsonsafe
from reconciler.runtime.intake import QUEUE_TOPIC_RE, Seen, call_start_from_event, offer
from reconciler.runtime.snapshot.injector import CallStart

log = logging.getLogger(__name__)

PATH = "/events"
MAX_BODY = 1_000_000
MAX_HEADERS = 100
READ_TIMEOUT_S = 30.0


class WebhookIntake:
    """`POST /events` with EventBridge envelopes -> deduplicated CallStarts to `sink`."""

    def __init__(
        self,
        sink: Callable[[CallStart], None],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seen: Seen | None = None,
    ) -> None:
        self.sink, self.host, self.port = sink, host, port
        self.seen = seen if seen is not None else Seen()
        self.counters: Counter[str] = Counter(dict.fromkeys(("events", "call_starts", "duplicates", "rejected"), 0))
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen; -> the URL to POST envelopes to."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
            self.port = int(self._server.sockets[0].getsockname()[1])
        return f"http://{self.host}:{self.port}{PATH}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def accept(self, body: bytes) -> HTTPStatus:
        """Handle one POSTed body: -> the status to answer."""
        try:
            envelope = jsonsafe.loads(body, what="the event", max_bytes=MAX_BODY)
        except ValueError:
            return self._reject("body is not JSON")
        detail = envelope.get("detail") if isinstance(envelope, dict) else None
        if not isinstance(detail, dict) or not isinstance(detail.get("topicName"), str):
            return self._reject("not an EventBridge envelope with detail.topicName")
        topic = detail["topicName"]
        self.counters["events"] += 1
        call = call_start_from_event(topic, detail.get("eventBody"))
        if call is not None:
            offer(call, self.seen, self.sink, self.counters)
        elif QUEUE_TOPIC_RE.match(topic):
            return self._reject("queue conversation event without an id or participants")
        return HTTPStatus.ACCEPTED

    def _reject(self, why: str) -> HTTPStatus:
        self.counters["rejected"] += 1
        log.warning("webhook event rejected: %s", why)
        return HTTPStatus.BAD_REQUEST

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status = await asyncio.wait_for(self._request(reader), READ_TIMEOUT_S)
            writer.write(
                f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _request(self, reader: asyncio.StreamReader) -> HTTPStatus:
        """Read one request (one per connection: the answer closes it)."""
        request_line = (await reader.readline()).decode("latin-1").split()
        if len(request_line) != 3:
            return HTTPStatus.BAD_REQUEST
        method, target = request_line[0], request_line[1].split("?", 1)[0]
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        if target != PATH:
            return HTTPStatus.NOT_FOUND
        if method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            return HTTPStatus.LENGTH_REQUIRED
        if not 0 <= length <= MAX_BODY:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        return self.accept(await reader.readexactly(length))
