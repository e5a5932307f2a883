"""Class 1: one redaction filter (reconciler.redact) between every secret recon holds and
every output: a server that echoes a token back (`unauthorized: token ... is revoked`) must
not get it into an exception, a log line, stdout/stderr, a report, a plan, the state or an
alert. Before, the platform's message went into the error as it came, and from there into
four outputs.

Unit tests of the registry and its sinks, then each place remote text comes in (Genesys
errors, the token endpoint, TradeSense error frames, feed errors, the platform-writer child),
then end to end through the CLI against a loopback fake Genesys org that echoes its access
token and the client secret everywhere it can."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx
import pytest
from conftest import Recon

from reconciler import redact


def fresh(label: str) -> str:
    """A secret no other test (or word) contains: the registry is process-wide."""
    return f"{label}-{secrets.token_hex(12)}"


# --- the registry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda s: s, id="raw"),
        pytest.param(lambda s: quote(s, safe=""), id="url-encoded"),
        pytest.param(lambda s: json.dumps(s)[1:-1], id="json-escaped"),
        pytest.param(lambda s: repr(s)[1:-1], id="repr-escaped"),
        pytest.param(lambda s: base64.b64encode(s.encode()).decode(), id="base64"),
        pytest.param(lambda s: s.replace("&", "&amp;").replace('"', "&quot;"), id="html-escaped"),
    ],
)
def test_every_derived_form_is_scrubbed(form: Any) -> None:
    secret = fresh('to/k&en+"x"\\é')
    redact.register(secret)
    text = f"server said: {form(secret)} is revoked"
    assert redact.scrub(text) == f"server said: {redact.REDACTED} is revoked"
    assert redact.holds(text)


def test_short_and_empty_values_are_not_registered() -> None:
    before = redact.registered()
    redact.register("", None, "abc")
    assert redact.registered() == before
    assert redact.scrub("abc") == "abc"


def test_scrub_data_keys_values_and_nesting() -> None:
    secret = fresh("nested")
    redact.register(secret)
    data = {"a": [1, {"b": f"x{secret}y", secret: True}], "c": (secret,), "d": 2.5, "e": None}
    assert redact.scrub_data(data) == {
        "a": [1, {"b": f"x{redact.REDACTED}y", redact.REDACTED: True}],
        "c": (redact.REDACTED,),
        "d": 2.5,
        "e": None,
    }


def test_clip_scrubs_before_it_cuts() -> None:
    secret = fresh("cut")
    redact.register(secret)
    clipped = redact.clip("x" * 30 + secret, 40)
    assert secret[:8] not in clipped, "a cut must not leave the start of the secret behind"


def test_the_stream_scrubs_click_output_and_hides_the_binary_buffer() -> None:
    secret = fresh("stream")
    redact.register(secret)
    inner = io.StringIO()
    stream = redact.ScrubbingStream(inner)
    click.echo(f"token {secret} is revoked", file=stream)
    print(f"again {secret}", file=stream)
    assert secret not in inner.getvalue() and inner.getvalue().count(redact.REDACTED) == 2
    assert not hasattr(stream, "buffer")


def test_the_log_filter_scrubs_message_arguments_exception_and_extras() -> None:
    secret = fresh("logged")
    redact.register(secret)
    out = io.StringIO()
    handler = redact.filter_handler(logging.StreamHandler(out))
    handler.setFormatter(logging.Formatter("%(message)s %(detail)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            logger.exception("fetch failed: %s", f"token {secret}", extra={"detail": {"reason": secret}})
    finally:
        logger.removeHandler(handler)
    assert secret not in out.getvalue()
    assert "fetch failed: token (redacted)" in out.getvalue() and "RuntimeError: boom (redacted)" in out.getvalue()


# --- where remote text comes in ----------------------------------------------------------------


def _genesys(handler: Any, secret: str) -> Any:
    from reconciler.providers.genesys.client import GenesysClient  # noqa: PLC0415
    from reconciler.providers.genesys.regions import Endpoints  # noqa: PLC0415

    base = "http://127.0.0.1:9"
    return GenesysClient(
        Endpoints(base, base), "recon-client", secret, transport=httpx.MockTransport(handler), max_retries=0
    )


@pytest.mark.parametrize("status", [400, 403, 404, 409, 429, 500])
def test_genesys_error_echoing_the_token_and_secret_is_scrubbed(status: int) -> None:
    from reconciler.providers.genesys.errors import GenesysError  # noqa: PLC0415

    secret, token = fresh("client-secret"), fresh("access-token")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": token, "expires_in": 3600})
        echoed = f"unauthorized: token {token} is revoked; {request.headers['Authorization']}; secret {secret}"
        return httpx.Response(status, json={"message": echoed, "messageParams": {"p": token}})

    async def call() -> None:
        async with _genesys(handler, secret) as client:
            await client.get("/api/v2/routing/queues")

    with pytest.raises(GenesysError) as failed:
        asyncio.run(call())
    text = str(failed.value) + repr(getattr(failed.value, "permissions", ""))
    assert token not in text and secret not in text
    if status not in (403, 429):
        assert "unauthorized: token (redacted) is revoked" in text


def test_the_token_endpoint_echoing_the_basic_header_is_scrubbed() -> None:
    from reconciler.providers.genesys.errors import AuthenticationError  # noqa: PLC0415

    secret = fresh("client-secret")

    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers["Authorization"]
        return httpx.Response(401, json={"error": "invalid_client", "error_description": f"bad {header} ({secret})"})

    async def call() -> None:
        async with _genesys(handler, secret) as client:
            await client.get("/api/v2/routing/queues")

    with pytest.raises(AuthenticationError) as failed:
        asyncio.run(call())
    basic = base64.b64encode(f"recon-client:{secret}".encode()).decode()
    assert secret not in str(failed.value) and basic not in str(failed.value)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_genesys_redirects_are_not_followed_with_the_token(status: int) -> None:
    from reconciler.providers.genesys.errors import ResponseError  # noqa: PLC0415

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": fresh("t"), "expires_in": 3600})
        return httpx.Response(status, headers={"Location": "https://evil.example/steal"})

    async def call() -> None:
        async with _genesys(handler, fresh("s")) as client:
            await client.put("/api/v2/routing/queues/q1", json={})

    with pytest.raises(ResponseError, match="redirect"):
        asyncio.run(call())
    assert not any("evil.example" in url for url in seen)


@pytest.mark.parametrize(
    "next_uri",
    ["https://evil.example/api/v2/routing/queues?p=2", "//evil.example/x", "@evil.example/x", "evil.example/x"],
)
def test_a_next_uri_never_takes_the_token_to_another_host(next_uri: str) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": fresh("t"), "expires_in": 3600})
        if len(hosts) == 2:
            return httpx.Response(200, json={"entities": [{"id": "1"}], "nextUri": next_uri})
        return httpx.Response(200, json={"entities": []})

    async def walk() -> None:
        async with _genesys(handler, fresh("s")) as client:
            async for _ in client.paginate("/api/v2/routing/queues"):
                pass

    asyncio.run(walk())
    assert set(hosts) == {"127.0.0.1"}


def test_tradesense_error_frame_echoing_the_token_is_scrubbed() -> None:
    from websockets.asyncio.server import serve  # noqa: PLC0415

    from reconciler.runtime.verification.wba import WbaClient, WbaUnauthorized  # noqa: PLC0415

    token = fresh("tsk-LIVE")

    async def answer(ws: Any) -> None:
        frame = json.loads(await ws.recv())
        message = f"unauthorized: token {frame['token']} is revoked"
        await ws.send(json.dumps({"type": "error", "id": frame["id"], "code": "unauthorized", "message": message}))
        await ws.close(4401)

    async def scenario() -> str:
        async with serve(answer, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = WbaClient(f"ws://127.0.0.1:{port}/wba", token, collector="c1")
            with pytest.raises(WbaUnauthorized) as refused:
                await client.connect()
            return str(refused.value)

    message = asyncio.run(scenario())
    assert token not in message and "unauthorized: token (redacted) is revoked" in message


def _feed(body: dict[str, Any], token: str) -> Any:
    from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef  # noqa: PLC0415
    from reconciler.runtime.snapshot.fetcher import open_fetcher  # noqa: PLC0415

    settings = FeedSettings(
        "fx", "bloomberg", "https://feed.example/v1", (InstrumentRef("EURUSD", "mid", "eurusd"),), token="env:T"
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    return open_fetcher(settings, lambda ref: token, transport=transport)


def test_feed_error_echoing_its_token_is_scrubbed_in_the_reason_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    token = fresh("feed-token")
    body = {"status": 0, "responseError": {"category": "AUTH", "message": f"token {token} is revoked"}}
    redact.filter_logger("reconciler.runtime.snapshot.fetcher")
    result = asyncio.run(_feed(body, token).fetch())
    assert result.status == "data_fetch_failed"
    assert token not in result.reason and "(redacted)" in result.reason
    assert token not in caplog.text


def test_a_feed_value_carrying_a_secret_is_not_attached() -> None:
    token = fresh("feed-token")
    body = {
        "status": 0,
        "timestamp": "2026-11-21T10:00:00Z",
        "data": [{"security": "EURUSD", "fieldData": {"mid": token}}],
    }
    result = asyncio.run(_feed(body, token).fetch())
    assert result.status == "data_fetch_failed" and result.snapshot is None
    assert "credential" in result.reason and token not in result.reason


# --- the platform-writer child scrubs what only it knows -----------------------------------------


class _EchoingOrg(BaseHTTPRequestHandler):
    """A Genesys org on loopback that issues `token` and echoes it (and the client secret) in
    every API error; `state` may change what it answers."""

    token = ""
    secret = ""
    description = ""
    fail = False
    requests: list[str]

    def log_message(self, *args: Any) -> None:  # the test's output stays quiet
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _echo(self) -> str:
        return f"unauthorized: token {self.token} is revoked (client secret {self.secret})"

    def _queue(self) -> dict[str, Any]:
        return {
            "id": "q-1",
            "name": "energy-desk-gas",
            "description": self.description,
            "suppressInQueueCallRecording": False,
            "selfUri": "/api/v2/routing/queues/q-1",
        }

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).requests.append(f"{method} {self.path}")
        path = self.path.split("?", 1)[0]
        if path == "/oauth/token":
            self._send(200, {"access_token": self.token, "token_type": "bearer", "expires_in": 3600})
        elif self.fail:
            self._send(400, {"message": self._echo(), "code": "bad.request"})
        elif method == "GET" and path == "/api/v2/routing/queues":
            self._send(200, {"entities": [self._queue()], "pageNumber": 1, "pageCount": 1, "total": 1})
        elif method == "GET" and path == "/api/v2/routing/queues/q-1":
            self._send(200, self._queue())
        elif method == "PUT" and path == "/api/v2/routing/queues/q-1":
            type(self).description = json.loads(body).get("description", "")
            self._send(200, self._queue())
        elif (method == "POST" and path == "/api/v2/audits/query") or (
            method == "GET" and path == "/api/v2/audits/query/job-1"
        ):
            self._send(200, {"id": "job-1", "state": "Succeeded"})
        elif method == "GET" and path == "/api/v2/audits/query/job-1/results":
            entry = {
                "entity": {"id": "q-1"},
                "user": {"name": f"console user {self.token}"},
                "client": {"id": f"client {self.secret}"},
                "eventDate": "2026-11-21T10:00:00.000Z",
            }
            self._send(200, {"entities": [entry]})
        else:
            self._send(404, {"message": self._echo()})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")


@pytest.fixture
def org() -> Iterator[type[_EchoingOrg]]:
    handler = type("Org", (_EchoingOrg,), {"token": fresh("org-token"), "secret": fresh("org-secret"), "requests": []})
    handler.description = f"old {handler.token}"
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_platform_writer_child_scrubs_the_token_only_it_holds(org: type[_EchoingOrg]) -> None:
    """The child fetches its own OAuth token, which this process never sees: only the child can
    scrub it from the error it replies with."""
    from reconciler.providers.genesys.client import ClientSettings  # noqa: PLC0415
    from reconciler.providers.genesys.errors import GenesysError  # noqa: PLC0415
    from reconciler.runtime.snapshot.attach_worker import ProcessAttacher  # noqa: PLC0415

    org.fail = True
    url = org.url  # type: ignore[attr-defined]

    async def scenario() -> str:
        async with ProcessAttacher(ClientSettings(url, url, "recon-client", org.secret, max_retries=0)) as writer:
            with pytest.raises(GenesysError) as failed:
                await writer.attach("c-1", "p-1", {"market_snapshot": "null"})
            return str(failed.value)

    message = asyncio.run(scenario())
    assert org.token not in message and "unauthorized: token (redacted) is revoked" in message


# --- end to end through the CLI ---------------------------------------------------------------

QUEUE = """apiVersion: recon/v1
kind: Queue
metadata: {name: energy-desk-gas}
spec: {regulated: false, region: eu-west-1, clientRegion: EU, description: gas desk}
"""


def _desk(root: Path, url: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "recon.yaml").write_text(
        "target: org\ntargets:\n  org:\n    genesys: {region: eu-west-1, clientId: recon-client, "
        f"clientSecret: env:GENESYS_SECRET, apiUrl: '{url}'}}\n"
    )
    (root / "queue.yaml").write_text(QUEUE)
    return root


def _everything_written(root: Path) -> str:
    return "\n".join(
        path.read_text(errors="replace") for path in sorted(root.rglob("*")) if path.is_file() and path.stat().st_size
    )


def test_an_org_echoing_its_token_and_our_secret_leaks_into_no_output(
    recon: Recon, tmp_path: Path, org: type[_EchoingOrg]
) -> None:
    root = _desk(tmp_path / "desk", org.url)  # type: ignore[attr-defined]
    env = {"GENESYS_SECRET": org.secret}
    leaked = (org.token, org.secret)
    outputs: list[str] = []

    def run(*args: str, code: int | tuple[int, ...] = 0) -> None:
        result = recon(*args, cwd=root, env=env)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode in ((code,) if isinstance(code, int) else code), result.stdout + result.stderr

    run("plan", "-out", "plan.json")
    assert "redacted" in outputs[-1], "the live description the org echoed is shown, scrubbed"
    run("plan", "--format", "json")
    run("show", "plan.json")
    run("apply", "plan.json", "--auto-approve")
    org.description = f"edited in the console {org.token}"
    run("drift", "-o", "drift.md", code=2)
    run("state", "show", "Queue/energy-desk-gas")
    org.fail = True
    run("plan", code=1)
    assert "unauthorized: token (redacted) is revoked" in outputs[-1]
    run("export", str(tmp_path / "exported"), code=(0, 1))
    written = _everything_written(root) + _everything_written(tmp_path / "exported")
    for secret in leaked:
        assert all(secret not in text for text in outputs), secret
        assert secret not in written, secret
    assert (root / "plan.json").exists() and (root / "drift.md").exists() and (root / ".recon" / "state.json").exists()


def test_plain_http_to_a_remote_org_is_refused_before_any_request(recon: Recon, tmp_path: Path) -> None:
    root = _desk(tmp_path / "desk", "http://203.0.113.7:8080")
    result = recon("plan", cwd=root, env={"GENESYS_SECRET": fresh("never-sent")})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "recon.yaml:4:" in result.stderr and "targets.org.genesys.apiUrl" in result.stderr
    assert "cleartext" in result.stderr and "Genesys" not in result.stdout
