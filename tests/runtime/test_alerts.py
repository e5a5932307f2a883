"""Webhook alerts: the Slack-compatible payload, URL rules, retries, dedupe, draining on close,
the bounded queue, and that the webhook URL's secret path never reaches a log line or a repr.

Deliveries go through `httpx.MockTransport` on a client passed as `client=` (the shared-client
hook), plus one end-to-end post to a real loopback HTTP server. No sleeps as synchronisation:
`aclose()` drains the queue, so every assertion runs after the worker is done. Backoff is 0 via
the constructor, except where a case proves Retry-After is honoured over the backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import pytest

from reconciler.errors import UsageError
from reconciler.runtime.alerts import Alert, WebhookAlerts, _retry_after, make_alert, redact_url, slack_payload

URL = "https://hooks.example/services/T000/B000/SECRETxyz"
AT = "2026-11-21T09:30:00.123Z"
Step = int | tuple[int, dict[str, str]] | type[httpx.TransportError]
"""One scripted answer: a status, a status with headers, or a transport error to raise."""


def an_alert(summary: str = "2 calls not recorded", key: str | None = None, **detail: Any) -> Alert:
    return Alert("capture_gap", "critical", summary, detail or {"queue": "rates-desk"}, AT, key)


def scripted(script: Sequence[Step], seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    """A MockTransport handler answering the n-th request with script[n] (the last step repeats)."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = script[min(len(seen), len(script)) - 1]
        if isinstance(step, type):
            raise step("scripted", request=request)
        status, headers = step if isinstance(step, tuple) else (step, {})
        return httpx.Response(status, headers=headers)

    return handle


def deliver(
    alerts: Sequence[Alert], script: Sequence[Step] = (200,), **options: Any
) -> tuple[WebhookAlerts, list[httpx.Request]]:
    """Send `alerts` through a started sink, close it (draining), -> the sink and the requests."""
    seen: list[httpx.Request] = []

    async def scenario() -> WebhookAlerts:
        async with httpx.AsyncClient(transport=httpx.MockTransport(scripted(script, seen))) as client:
            async with WebhookAlerts(URL, client=client, **{"backoff_s": 0.0, **options}) as sink:
                for alert in alerts:
                    sink.send(alert)
            return sink

    return asyncio.run(scenario()), seen


def posted(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


# --- payload -------------------------------------------------------------------------------


def test_slack_payload_shape() -> None:
    payload = slack_payload(an_alert(key="gap:rates-desk:2026-11-21", queue="rates-desk", calls=2))

    assert payload["text"] == ":rotating_light: [CRITICAL] capture_gap: 2 calls not recorded"
    header, summary, fields, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "[CRITICAL] capture_gap"}}
    assert summary == {"type": "section", "text": {"type": "mrkdwn", "text": "2 calls not recorded"}}
    assert fields["fields"] == [
        {"type": "mrkdwn", "text": "*queue*\nrates-desk"},
        {"type": "mrkdwn", "text": "*calls*\n2"},
    ]
    assert context["type"] == "context" and AT in context["elements"][0]["text"]
    assert payload["recon"] == {
        "kind": "capture_gap",
        "severity": "critical",
        "summary": "2 calls not recorded",
        "detail": {"queue": "rates-desk", "calls": 2},
        "at": AT,
        "key": "gap:rates-desk:2026-11-21",
    }
    json.dumps(payload)  # JSON-ready as a whole


@pytest.mark.parametrize(
    ("detail", "field_texts", "context_has"),
    [
        pytest.param({"reason": "x" * 500}, ["*reason*\n" + "x" * 199 + "…"], "", id="value over 200 chars truncated"),
        pytest.param({"reason": "x" * 200}, ["*reason*\n" + "x" * 200], "", id="value of exactly 200 chars kept"),
        pytest.param({"ids": ["a", "b"]}, ['*ids*\n["a", "b"]'], "", id="non-string value shown as JSON"),
        pytest.param({"who": "<!channel> & co"}, ["*who*\n&lt;!channel&gt; &amp; co"], "", id="mrkdwn escaped"),
        pytest.param(
            {f"f{n:02d}": n for n in range(12)},
            [f"*f{n:02d}*\n{n}" for n in range(10)],
            "2 more field(s) in recon.detail",
            id="at most 10 fields, the rest counted",
        ),
    ],
)
def test_slack_payload_fields(detail: dict[str, Any], field_texts: list[str], context_has: str) -> None:
    payload = slack_payload(an_alert(**detail))

    assert [field["text"] for field in payload["blocks"][2]["fields"]] == field_texts
    assert context_has in payload["blocks"][3]["elements"][0]["text"]
    assert payload["recon"]["detail"] == detail  # the machine-readable detail is never cut


@pytest.mark.parametrize(
    ("kind", "detail", "severity", "summary", "fields"),
    [
        pytest.param(
            "collector_down", "no member answered\nnext: check the WBA", "critical", "no member answered",
            {"message": "no member answered\nnext: check the WBA"}, id="collector text detail: first line is the summary",
        ),
        pytest.param(
            "data_fetch_failed", {"conversationId": "c1", "reason": "timeout"}, "major", "timeout",
            {"conversationId": "c1", "reason": "timeout"}, id="service mapping detail: reason is the summary",
        ),
        pytest.param("something_new", {}, "warning", "something new", {}, id="unknown kind: warning"),
    ],
)  # fmt: skip
def test_make_alert_from_callbacks(
    kind: str, detail: str | Mapping[str, Any], severity: str, summary: str, fields: Mapping[str, Any]
) -> None:
    alert = make_alert(kind, detail)

    assert (alert.kind, alert.severity, alert.summary, dict(alert.detail)) == (kind, severity, summary, fields)
    assert alert.at.endswith("Z") and len(alert.at) == len(AT)


def test_alert_refuses_an_unknown_severity() -> None:
    with pytest.raises(ValueError, match="severity"):
        Alert("capture_gap", "urgent", "s", {}, AT)


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param(URL, True, id="https ok"),
        pytest.param("http://127.0.0.1:8080/hook", True, id="http to 127.0.0.1 ok"),
        pytest.param("http://[::1]:8080/hook", True, id="http to ::1 ok"),
        pytest.param("http://localhost/hook", True, id="http to localhost ok"),
        pytest.param("http://hooks.example/services/T000/B000/SECRETxyz", False, id="http to a remote host refused"),
        pytest.param("ftp://hooks.example/SECRETxyz", False, id="ftp refused"),
        pytest.param("hooks.example/SECRETxyz", False, id="no scheme refused"),
        pytest.param("https:///SECRETxyz", False, id="no host refused"),
    ],
)
def test_url_validation(url: str, ok: bool) -> None:
    if ok:
        assert repr(WebhookAlerts(url)) == f"WebhookAlerts({redact_url(url)})"
        return
    with pytest.raises(UsageError) as refused:
        WebhookAlerts(url)
    assert "https" in str(refused.value)
    assert "SECRETxyz" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        pytest.param(URL, "https://hooks.example", id="path dropped"),
        pytest.param("https://user:pw@hooks.example:8443/x?token=t#f", "https://hooks.example:8443", id="userinfo query dropped"),
        pytest.param("http://[::1]:9/x", "http://[::1]:9", id="ipv6 bracketed"),
        pytest.param("https://hooks.example:99999/x", "<invalid url>", id="bad port"),
    ],
)  # fmt: skip
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


# --- delivery ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "options", "posts", "delivered", "failed"),
    [
        pytest.param([200], {}, 1, 1, 0, id="200 delivered first time"),
        pytest.param([503, 200], {}, 2, 1, 0, id="503 retried then delivered"),
        pytest.param([500, 502, 503, 504], {"attempts": 4}, 4, 0, 1, id="5xx every time: attempts posts then failed"),
        pytest.param(
            [(429, {"Retry-After": "0"}), 200], {"backoff_s": 30.0, "timeout_s": 1.0}, 2, 1, 0,
            id="429 Retry-After 0 retried at once, not after the 30 s backoff",
        ),
        pytest.param([(429, {}), 200], {}, 2, 1, 0, id="429 without Retry-After retried on the backoff"),
        pytest.param([400], {}, 1, 0, 1, id="400 not retried"),
        pytest.param([404], {}, 1, 0, 1, id="404 not retried"),
        pytest.param([301], {}, 1, 0, 1, id="redirect not followed nor retried"),
        pytest.param([httpx.ConnectError], {"attempts": 3}, 3, 0, 1, id="connection error retried then failed"),
        pytest.param([httpx.ReadTimeout, 200], {}, 2, 1, 0, id="timeout retried then delivered"),
    ],
)  # fmt: skip
def test_retries(script: list[Step], options: dict[str, Any], posts: int, delivered: int, failed: int) -> None:
    sink, seen = deliver([an_alert()], script, **options)

    assert (len(seen), sink.delivered, sink.failed, sink.dropped) == (posts, delivered, failed, 0)
    assert all(posted(request) == posted(seen[0]) for request in seen)  # the same body every attempt


@pytest.mark.parametrize(
    ("value", "default", "seconds"),
    [
        pytest.param("0", 1.0, 0.0, id="zero"),
        pytest.param("2.5", 1.0, 2.5, id="seconds"),
        pytest.param("120", 1.0, 30.0, id="capped at 30 s"),
        pytest.param("-4", 1.0, 0.0, id="negative is now"),
        pytest.param("Wed, 21 Oct 2026 07:28:00 GMT", 1.0, 1.0, id="HTTP date: own backoff"),
        pytest.param("", 0.5, 0.5, id="absent: own backoff"),
    ],
)
def test_retry_after(value: str, default: float, seconds: float) -> None:
    assert _retry_after(value, default) == seconds


def test_dedupe_by_key() -> None:
    alerts = [an_alert(key="gap:1"), an_alert(key="gap:1"), an_alert(key="gap:2"), an_alert(), an_alert()]

    sink, seen = deliver(alerts)

    assert [posted(request)["recon"]["key"] for request in seen] == ["gap:1", "gap:2", None, None]
    assert (sink.delivered, sink.dropped) == (4, 0)


def test_in_order_and_only_json_to_the_webhook() -> None:
    seen: list[httpx.Request] = []

    async def scenario() -> None:
        transport = httpx.MockTransport(scripted([200], seen))
        headers, cookies = {"Authorization": "Bearer genesys-token"}, {"session": "s"}  # the service's own
        client = httpx.AsyncClient(transport=transport, headers=headers, cookies=cookies)
        async with client, WebhookAlerts(URL, client=client) as sink:
            for n in range(5):
                sink.send(an_alert(summary=f"alert {n}"))

    asyncio.run(scenario())

    assert [posted(request)["recon"]["summary"] for request in seen] == [f"alert {n}" for n in range(5)]
    for request in seen:
        assert (request.method, str(request.url)) == ("POST", URL)
        assert request.headers["content-type"] == "application/json"
        assert "authorization" not in request.headers and "cookie" not in request.headers


def test_secret_url_path_never_logged_nor_in_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    sink, seen = deliver([an_alert(), an_alert(), an_alert()], [503, 200, 400, httpx.ConnectError], attempts=2)

    assert (len(seen), sink.delivered, sink.failed) == (5, 1, 2)
    assert any(record.name == "httpx" for record in caplog.records)  # httpx's own request line, redacted
    assert "SECRETxyz" not in caplog.text
    assert all("SECRETxyz" not in record.getMessage() for record in caplog.records)
    assert "SECRETxyz" not in repr(sink)
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "reconciler.runtime" and r.levelno == logging.WARNING
    ]
    assert warnings == [
        "alert capture_gap to https://hooks.example failed after 1 attempt(s): HTTP 400",
        "alert capture_gap to https://hooks.example failed after 2 attempt(s): ConnectError",
    ]
    assert "2 calls not recorded" not in caplog.text  # nor the payload


# --- queue and close -----------------------------------------------------------------------


def test_aclose_drains_alerts_queued_before_start() -> None:
    seen: list[httpx.Request] = []

    async def scenario() -> WebhookAlerts:
        async with httpx.AsyncClient(transport=httpx.MockTransport(scripted([200], seen))) as client:
            sink = WebhookAlerts(URL, client=client, backoff_s=0.0)
            for n in range(3):
                sink.send(an_alert(summary=f"alert {n}"))
            await sink.aclose()  # never started: aclose starts the worker to drain
            sink.send(an_alert(summary="after close"))
            return sink

    sink = asyncio.run(scenario())

    assert [posted(request)["recon"]["summary"] for request in seen] == ["alert 0", "alert 1", "alert 2"]
    assert (sink.delivered, sink.failed, sink.dropped) == (3, 0, 1)


def test_aclose_gives_up_after_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> WebhookAlerts:
        never = asyncio.Event()

        async def hang(request: httpx.Request) -> httpx.Response:
            await never.wait()
            return httpx.Response(200)

        async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as client:
            sink = WebhookAlerts(URL, client=client, timeout_s=0.05, attempts=1)
            await sink.start()
            sink.send(an_alert())
            sink.send(an_alert())
            await sink.aclose()
            return sink

    sink = asyncio.run(scenario())

    assert (sink.delivered, sink.failed) == (0, 2)
    assert "gave up on" in caplog.text and "SECRETxyz" not in caplog.text


def test_queue_full_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[httpx.Request] = []

    async def scenario() -> WebhookAlerts:
        async with httpx.AsyncClient(transport=httpx.MockTransport(scripted([200], seen))) as client:
            sink = WebhookAlerts(URL, client=client, queue_size=2)
            for n in range(5):  # not started: nothing leaves the queue
                sink.send(an_alert(summary=f"alert {n}", key=f"k{n}"))
            await sink.aclose()
            return sink

    sink = asyncio.run(scenario())

    assert (sink.delivered, sink.dropped) == (2, 3)
    assert [posted(request)["recon"]["summary"] for request in seen] == ["alert 0", "alert 1"]
    assert caplog.text.count("the queue is full") == 3


# --- end to end ----------------------------------------------------------------------------


async def loopback_server(
    received: asyncio.Queue[tuple[str, dict[str, str], bytes]],
) -> tuple[asyncio.Server, int]:
    """A tiny HTTP/1.1 server on 127.0.0.1: each request -> (request line, headers, body) on `received`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        headers: dict[str, str] = {}
        while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()
        await received.put((line, headers, body))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def test_end_to_end_post_to_a_loopback_server() -> None:
    async def scenario() -> tuple[tuple[str, dict[str, str], bytes], WebhookAlerts]:
        received: asyncio.Queue[tuple[str, dict[str, str], bytes]] = asyncio.Queue()
        server, port = await loopback_server(received)
        async with server:
            async with WebhookAlerts(f"http://127.0.0.1:{port}/hook/SECRETxyz") as sink:
                sink.alert("data_fetch_failed", {"conversationId": "c1", "reason": "feed timeout"})
            return await asyncio.wait_for(received.get(), 10), sink

    (line, headers, body), sink = asyncio.run(scenario())

    assert line == "POST /hook/SECRETxyz HTTP/1.1"
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["text"] == ":red_circle: [MAJOR] data_fetch_failed: feed timeout"
    assert [block["type"] for block in payload["blocks"]] == ["header", "section", "section", "context"]
    assert payload["recon"]["detail"] == {"conversationId": "c1", "reason": "feed timeout"}
    assert (sink.delivered, sink.failed) == (1, 0)
