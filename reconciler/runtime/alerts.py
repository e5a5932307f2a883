"""Alert delivery to one webhook: Slack-compatible JSON, posted in order from a background task.

The runtime service (`recon runtime`) calls `alert(kind, detail: Mapping)`, the verification
collectors `alert(kind, detail: str)`: `WebhookAlerts.alert` takes both and queues an `Alert`.
`send(alert)` never blocks: a full queue drops the alert (counted, logged); an alert with a `key`
is delivered once per sink lifetime. The body (`slack_payload`) is Slack's `text` and `blocks`
plus `recon`, the machine-readable alert for other receivers. Retries: connection errors,
timeouts, 429 (Retry-After honoured, capped at 30 s) and 5xx, up to `attempts` posts with
exponential backoff (capped at 10 s); other statuses fail at once (a redirect is not followed).
`aclose()` drains the queue for at most `timeout_s * attempts` seconds. Secrets: a webhook URL's
path is itself one, so logs, errors and repr show `scheme://host` only (`redact_url`), and the
URL is registered with reconciler.redact (httpx's own request log line is scrubbed by it);
payloads are never logged, and are scrubbed of every secret recon holds before they are posted
(an alert may quote a server's error); a shared client's headers, cookies and auth never reach
the webhook. The URL must pass reconciler.endpoints (https, or http on loopback; never a
link-local or metadata address, also after DNS). The webhook's answer is never read: only its
status counts.

Called by: reconciler.runtime.service, `recon runtime`. Imports httpx and reconciler.errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, Self

import httpx

from reconciler import endpoints, redact
from reconciler.errors import UsageError

log = logging.getLogger("reconciler.runtime")

SEVERITIES = ("critical", "major", "minor", "warning", "info")
EMOJI = {"critical": ":rotating_light:", "major": ":red_circle:", "minor": ":large_orange_circle:"} | {
    "warning": ":warning:",
    "info": ":information_source:",
}
KIND_SEVERITY = dict.fromkeys(("capture_gap", "collector_down", "unauthorized"), "critical") | dict.fromkeys(
    (
        "data_fetch_failed",
        "instruments_dropped",
        "ha_mismatch",
        "too_many_traders",
        "bad_request",
        "protocol_error",
        "invalid_cdr",
        "cdr_changed",
    ),
    "major",
)
"""Default severity per known kind (`make_alert`); any other kind is a warning."""
MAX_FIELDS = 10
MAX_VALUE = 200
MAX_BACKOFF_S = 10.0
MAX_RETRY_AFTER_S = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """One alert. `detail` holds JSON-ready fields and never a secret; `at` is ISO-8601 UTC ms Z."""

    kind: str
    severity: str
    summary: str
    detail: Mapping[str, Any]
    at: str
    key: str | None = None
    """Dedupe key (e.g. a finding key): the same key is delivered once per sink lifetime."""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")


def utc_now_ms() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def make_alert(kind: str, detail: str | Mapping[str, Any], *, severity: str | None = None) -> Alert:
    """An Alert from a callback's `(kind, detail)`: a text detail becomes `{"message": text}` and
    its first line the summary; a mapping's `reason` or `message` is the summary if present."""
    if isinstance(detail, str):
        fields: Mapping[str, Any] = {"message": detail}
        summary = detail.strip().splitlines()[0] if detail.strip() else kind.replace("_", " ")
    else:
        fields = detail
        text = detail.get("reason", detail.get("message"))
        summary = text if isinstance(text, str) and text else kind.replace("_", " ")
    return Alert(kind, severity or KIND_SEVERITY.get(kind, "warning"), _truncate(summary), fields, utc_now_ms())


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook JSON (`text`, `blocks`) plus `recon`, the machine-readable alert."""
    label = f"[{alert.severity.upper()}] {alert.kind}"
    items = list(alert.detail.items())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": label[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(alert.summary[:3000])}},
    ]
    if items:
        fields = [
            {"type": "mrkdwn", "text": f"*{_escape(_truncate(str(name)))}*\n{_escape(_truncate(_text(value)))}"}
            for name, value in items[:MAX_FIELDS]
        ]
        blocks.append({"type": "section", "fields": fields})
    context = alert.at + (f" · key {alert.key}" if alert.key else "")
    if len(items) > MAX_FIELDS:
        context += f" · {len(items) - MAX_FIELDS} more field(s) in recon.detail"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]})
    return {
        "text": f"{EMOJI[alert.severity]} {label}: {alert.summary}",
        "blocks": blocks,
        "recon": {
            **{f.name: getattr(alert, f.name) for f in dataclasses.fields(alert)},
            "detail": json.loads(json.dumps(dict(alert.detail), default=str)),
        },
    }


def redact_url(url: str) -> str:
    """`scheme://host[:port]` of `url`: no user info, path, query or fragment."""
    return endpoints.origin_of(url)


class WebhookAlerts:
    """Delivers alerts to one webhook URL from a background task, in order, never blocking the caller.
    `client`: share the service's `httpx.AsyncClient` (None: an own client, closed by `aclose`); only
    its connection pool is used, requests carry none of its headers, cookies or auth."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        queue_size: int = 1000,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._endpoint = _check_url(url)
        self._guard = endpoints.HostGuard()
        if attempts < 1 or timeout_s <= 0 or backoff_s < 0 or queue_size < 1:
            raise UsageError("webhook alerts need attempts >= 1, timeout_s > 0, backoff_s >= 0 and queue_size >= 1")
        self._url, self.target = url, redact_url(url)
        self.timeout_s, self.attempts, self.backoff_s = timeout_s, attempts, backoff_s
        self._client, self._own_client = client, client is None
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._keys: set[str] = set()
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = self._closed = False
        self.delivered = self.failed = self.dropped = 0
        redact.register(url, str(httpx.URL(url)))
        redact.filter_logger("httpx")

    def __repr__(self) -> str:
        return f"WebhookAlerts({self.target})"

    def alert(self, kind: str, detail: str | Mapping[str, Any]) -> None:
        """The `alert(kind, detail)` callback of the runtime service and the collectors."""
        self.send(make_alert(kind, detail))

    def send(self, alert: Alert) -> None:
        """Queue `alert` (call from the event loop's thread); never blocks, never raises."""
        if alert.key is not None and alert.key in self._keys:
            return
        if self._closed or self._queue.full():
            self.dropped += 1
            why = "the sink is closed" if self._closed else "the queue is full"
            log.warning("alert %s to %s dropped: %s", alert.kind, self.target, why)
            return
        self._queue.put_nowait(alert)
        if alert.key is not None:
            self._keys.add(alert.key)

    async def start(self) -> None:
        if self._worker is None:
            self._client = self._client or httpx.AsyncClient()
            self._worker = asyncio.create_task(self._run(), name=f"alerts {self.target}")

    async def aclose(self) -> None:
        """Deliver what is queued within `timeout_s * attempts` seconds, then give up on the rest."""
        if self._closed:
            return
        self._closed = True
        if self._worker is None and not self._queue.empty():
            await self.start()
        try:
            async with asyncio.timeout(self.timeout_s * self.attempts):
                await self._queue.join()
        except TimeoutError:
            left = self._queue.qsize() + int(self._in_flight)
            self.failed += left
            log.warning("alerts to %s: gave up on %d undelivered alert(s) at close", self.target, left)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._own_client and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            self._in_flight = True
            try:
                await self._deliver(alert)
            except Exception as error:  # never let one alert stop the sink
                self.failed += 1
                log.warning("alert %s to %s not delivered: %s", alert.kind, self.target, type(error).__name__)
            finally:
                self._in_flight = False
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        assert self._client is not None
        # A bare Request, not client.post(): a shared client's headers, cookies and auth stay out.
        headers, timeout = {"Content-Type": "application/json"}, {"timeout": httpx.Timeout(self.timeout_s).as_dict()}
        body, reason = json.dumps(redact.scrub_data(slack_payload(alert))).encode(), ""
        try:
            await self._guard.ensure(self._endpoint, "the alert webhook URL")
        except endpoints.EndpointRefused as refused:
            self.failed += 1
            log.warning("alert %s to %s not sent: %s", alert.kind, self.target, refused.message)
            return
        for attempt in range(self.attempts):
            delay = min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
            request = httpx.Request("POST", self._url, content=body, headers=headers, extensions=timeout)
            try:
                async with asyncio.timeout(self.timeout_s):
                    response = await self._client.send(request, auth=None, follow_redirects=False, stream=True)
                    await response.aclose()  # only the status counts: the body is never read
            except (httpx.TransportError, TimeoutError) as error:
                reason = type(error).__name__
            else:
                status = response.status_code
                if response.is_success:
                    self.delivered += 1
                    return
                reason = f"HTTP {status}"
                if status != 429 and status < 500:
                    break
                if status == 429:
                    delay = _retry_after(response.headers.get("Retry-After", ""), delay)
            if attempt + 1 < self.attempts:
                log.debug("alert %s to %s: %s, retrying in %.2f s", alert.kind, self.target, reason, delay)
                await asyncio.sleep(delay)
        self.failed += 1
        log.warning("alert %s to %s failed after %d attempt(s): %s", alert.kind, self.target, attempt + 1, reason)


def _check_url(url: str) -> endpoints.Endpoint:
    """The webhook URL as the endpoint policy accepts it, or UsageError (showing scheme://host only)."""
    try:
        return endpoints.check(url, "http", what=f"alert webhook URL {redact_url(url)}")
    except endpoints.EndpointRefused as refused:
        raise UsageError(refused.message, next_step=refused.hint or "use an https:// URL") from None


def _retry_after(value: str, default: float) -> float:
    with contextlib.suppress(ValueError):  # absent, an HTTP date or garbage: our own backoff
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    return default


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def _truncate(text: str, limit: int = MAX_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, so a detail value cannot mention @channel or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
