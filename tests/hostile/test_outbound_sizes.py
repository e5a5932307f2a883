"""Class 8: recon decides how much of a remote body it reads, not the server.

Before, feed bodies were read whole (100 MB taken, 440 MB peak), as were Genesys responses
(httpx and aiohttp), webhook answers and S3 objects (`_metadata.json`, chain heads), and
aiohttp followed redirects with the Authorization header. Now each reader stops at its limit,
after decompression (a gzip bomb is a large body too), before parsing."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from reconciler.providers.genesys.replies import MAX_RESPONSE_BYTES
from reconciler.runtime.snapshot.feeds import MAX_BODY


def _padded_json(size: int) -> bytes:
    """A valid JSON object of about `size` bytes (so only the size can be the problem)."""
    head = b'{"status": 0, "timestamp": "2026-11-21T10:00:00Z", "pad": "'
    return head + b"x" * max(size - len(head) - 2, 0) + b'"}'


class Counted(httpx.AsyncByteStream):
    """A response body of `chunks` chunks that counts how many were read."""

    def __init__(self, chunk: bytes, chunks: int) -> None:
        self.chunk, self.chunks, self.read = chunk, chunks, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield self.chunk


def _bodies(limit: int) -> list[Any]:
    """Answers built when called (a table of 30 MB values would be held for the whole run)."""
    return [
        pytest.param(lambda: httpx.Response(200, content=_padded_json(limit + 1024)), id="just-over-the-limit"),
        pytest.param(
            lambda: httpx.Response(
                200, content=gzip.compress(_padded_json(limit + 2**20), 1), headers={"Content-Encoding": "gzip"}
            ),
            id="gzip-bomb",
        ),
        pytest.param(
            lambda: httpx.Response(200, headers={"Content-Length": str(50 * 2**30)}, stream=Counted(b"{}", 1)),
            id="announced-50-GB",
        ),
        pytest.param(lambda: httpx.Response(200, stream=Counted(b"x" * 2**20, 10_000)), id="10-GB-stream"),
    ]


@pytest.mark.parametrize("answer", _bodies(MAX_BODY))
def test_feed_bodies_are_capped(answer: Any) -> None:
    from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef  # noqa: PLC0415
    from reconciler.runtime.snapshot.fetcher import open_fetcher  # noqa: PLC0415

    settings = FeedSettings(
        "fx", "bloomberg", "https://feed.example/v1", (InstrumentRef("EURUSD", "mid", "eurusd"),), timeout_s=30
    )
    fetcher = open_fetcher(settings, lambda ref: "", transport=httpx.MockTransport(lambda request: answer()))
    result = asyncio.run(fetcher.fetch())
    assert result.status == "data_fetch_failed"
    assert "limit" in result.reason


@pytest.mark.parametrize("answer", _bodies(MAX_RESPONSE_BYTES))
def test_genesys_bodies_are_capped(answer: Any) -> None:
    from reconciler.providers.genesys.client import GenesysClient  # noqa: PLC0415
    from reconciler.providers.genesys.errors import ResponseError  # noqa: PLC0415
    from reconciler.providers.genesys.regions import Endpoints  # noqa: PLC0415

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "cap-test-token", "expires_in": 3600})
        return answer()

    async def call() -> None:
        base = "http://127.0.0.1:9"
        async with GenesysClient(
            Endpoints(base, base), "id", "cap-secret", transport=httpx.MockTransport(handler)
        ) as c:
            await c.get("/api/v2/routing/queues")

    with pytest.raises(ResponseError, match="MiB"):
        asyncio.run(call())


def test_the_token_endpoint_body_is_capped() -> None:
    from reconciler.providers.genesys.client import GenesysClient  # noqa: PLC0415
    from reconciler.providers.genesys.errors import ResponseError  # noqa: PLC0415
    from reconciler.providers.genesys.regions import Endpoints  # noqa: PLC0415

    stream = Counted(b" " * 2**20, 10_000)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=stream))

    async def call() -> None:
        base = "http://127.0.0.1:9"
        async with GenesysClient(Endpoints(base, base), "id", "cap-secret", transport=transport) as client:
            await client.get("/api/v2/routing/queues")

    with pytest.raises(ResponseError, match="MiB"):
        asyncio.run(call())
    assert stream.read <= MAX_RESPONSE_BYTES // 2**20 + 1


class _Loopback(BaseHTTPRequestHandler):
    """Answers per path: /big (a chunked body over the limit), /redirect (302 to /elsewhere,
    which records the headers it got), /oauth/token."""

    seen: list[tuple[str, str | None]] = []  # noqa: RUF012

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/big"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 2**20
            try:
                for _ in range(MAX_RESPONSE_BYTES // 2**20 + 8):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading: that is the point
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json({"entities": []})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._json({"access_token": "loopback-token", "expires_in": 3600})

    def _json(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def loopback() -> Iterator[str]:
    _Loopback.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Loopback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _pooled(base: str, path: str) -> Any:
    from reconciler.providers.genesys.client import GenesysClient  # noqa: PLC0415
    from reconciler.providers.genesys.regions import Endpoints  # noqa: PLC0415
    from reconciler.providers.genesys.transport import PooledSender  # noqa: PLC0415

    async def call() -> Any:
        client = GenesysClient(Endpoints(base, base), "id", "pooled-secret", sender=PooledSender(), max_retries=0)
        async with client:
            return await client.get(path)

    return asyncio.run(call())


def test_the_pooled_sender_caps_bodies(loopback: str) -> None:
    from reconciler.providers.genesys.errors import ResponseError  # noqa: PLC0415

    with pytest.raises(ResponseError, match="MiB"):
        _pooled(loopback, "/big")


def test_the_pooled_sender_does_not_follow_redirects_with_the_token(loopback: str) -> None:
    from reconciler.providers.genesys.errors import ResponseError  # noqa: PLC0415

    with pytest.raises(ResponseError, match="redirect"):
        _pooled(loopback, "/redirect")
    assert [path for path, _ in _Loopback.seen] == ["/redirect"], "aiohttp would have gone on to /elsewhere"


def test_a_webhook_answer_is_never_read() -> None:
    from reconciler.runtime.alerts import WebhookAlerts, make_alert  # noqa: PLC0415

    stream = Counted(b"x" * 2**20, 10_000)

    async def scenario() -> WebhookAlerts:
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, stream=stream)))
        async with client, WebhookAlerts("https://hooks.example/T/B/x", client=client) as sink:
            sink.send(make_alert("capture_gap", "a gap"))
        return sink

    assert asyncio.run(scenario()).delivered == 1
    assert stream.read == 0


class _Body(io.BytesIO):
    """What boto3 returns as an object's Body: read(amt) and close()."""


@pytest.mark.parametrize(
    ("size", "read"),
    [
        pytest.param(100, True, id="small"),
        pytest.param(2**20, True, id="at-limit"),
        pytest.param(2**20 + 1, False, id="over"),
    ],
)
def test_s3_object_reads_are_bounded(size: int, read: bool) -> None:
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415

    body = _Body(b"x" * size)
    got = AwsClient.read_limited(body, 2**20)
    assert (got is not None) is read and body.closed
