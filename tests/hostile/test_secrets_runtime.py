"""Class 1, end to end through `recon runtime`: the TradeSense server that answers
`unauthorized: token ... is revoked` with the very token, and the market-data feed that echoes
its bearer token in its error, must not get either into stdout, the JSON log lines on stderr,
the alert posted to the webhook, the evidence database or the webhook URL's own secret path.
Before, the token went into the alert's summary, the log line, the webhook post and the
collector's logged warning: the four outputs of the issue.

The Genesys org is the sandbox's, reached as a named target (so the client secret is a
resolved env: reference); the feed, the TradeSense server and the webhook are loopback fakes
in this process."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, Recon
from test_cli_genesys import Org, ok
from websockets.asyncio.server import serve


def fresh(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


@dataclass
class Fakes:
    feed_token: str
    ts_token: str
    feed_url: str = ""
    ts_url: str = ""
    hook_url: str = ""
    posts: list[bytes] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _http(fakes: Fakes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fakes.requests.append(self.path)
            if self.path.startswith("/hook/"):
                fakes.posts.append(body)
                answer = b"ok"
            else:  # the feed (bloomberg dialect): refuses the token, quoting it
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                error = {"category": "AUTH", "message": f"token {bearer} is revoked"}
                answer = json.dumps({"status": 0, "responseError": error}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    found = Fakes(fresh("feed-token"), fresh("tsk-LIVE"))
    http = ThreadingHTTPServer(("127.0.0.1", 0), _http(found))
    base = f"http://127.0.0.1:{http.server_address[1]}"
    found.feed_url, found.hook_url = f"{base}/v1/snapshot", f"{base}/hook/T0001/B0001/{fresh('hook-path')}"
    threads = [threading.Thread(target=http.serve_forever, daemon=True)]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] = loop.create_future()

    async def answer(ws: Any) -> None:
        frame = json.loads(await ws.recv())
        message = f"unauthorized: token {frame.get('token')} is revoked"
        await ws.send(json.dumps({"type": "error", "id": frame.get("id"), "code": "unauthorized", "message": message}))
        await ws.close(4401)

    async def wba() -> None:
        async with serve(answer, "127.0.0.1", 0) as server:
            found.ts_url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/wba"
            started.set()
            await stop

    threads.append(threading.Thread(target=loop.run_until_complete, args=(wba(),), daemon=True))
    for thread in threads:
        thread.start()
    assert started.wait(30)
    try:
        yield found
    finally:
        http.shutdown()
        http.server_close()
        loop.call_soon_threadsafe(stop.set_result, None)
        for thread in threads:
            thread.join(timeout=30)
        loop.close()


def _desk(tmp_path: Path, fakes: Fakes, genesys_url: str) -> Path:
    root = tmp_path / "desk"
    (root / "recon.yaml").write_text(
        "target: org\ntargets:\n  org:\n    genesys: {region: eu-west-1, clientId: recon-sandbox, "
        f"clientSecret: env:GENESYS_SECRET, apiUrl: '{genesys_url}'}}\n"
    )
    feed = (EXAMPLES / "energy-desk-eu" / "market-data.yaml").read_text()
    feed = feed.replace("provider: generic-rest", "provider: bloomberg")
    feed = feed.replace("https://marketdata.internal.example/v1/snapshot", fakes.feed_url)
    feed = feed.replace(
        "  tls:\n    clientCert: file:certs/feed-client.pem\n    clientKey: env:FEED_CLIENT_KEY\n    ca: file:certs/feed-ca.pem\n",
        "  credentials: {token: env:FEED_TOKEN}\n",
    )
    (root / "market-data.yaml").write_text(feed)
    collectors = (EXAMPLES / "energy-desk-eu" / "collectors.yaml").read_text()
    collectors = collectors.replace("wss://tradesense-a1.internal.example:8443/wba", fakes.ts_url)
    collectors = collectors.replace(
        "        secondary: wss://tradesense-a2.internal.example:8443/wba   # HA pair: both serve the same CDRs\n", ""
    )
    (root / "collectors.yaml").write_text(collectors.replace("env:TRADESENSE_TOKEN_A", "file:secrets/ts-token"))
    (root / "secrets").mkdir()
    (root / "secrets" / "ts-token").write_text(fakes.ts_token + "\n")
    return root


def test_tokens_echoed_by_the_switch_and_the_feed_reach_no_output(recon: Recon, tmp_path: Path, fakes: Fakes) -> None:
    sandbox = tmp_path / "sandbox"
    shutil.copytree(EXAMPLES / "energy-desk-eu", sandbox)
    ok(recon("sandbox", "up", cwd=sandbox))
    org = Org(sandbox)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
    org.post(
        "/api/v2/sandbox/conversations",
        {"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"], "startTime": start, "count": 2},
    )
    shutil.copytree(
        sandbox, tmp_path / "desk", ignore=shutil.ignore_patterns(".recon", "collectors.yaml", "recon.yaml")
    )
    root = _desk(tmp_path, fakes, org.url)
    env = {"GENESYS_SECRET": "sandbox-secret", "FEED_TOKEN": fakes.feed_token}
    result = recon(
        "runtime", "--once", "--since", "10m", "--no-heads", "--alert-webhook", "env:HOOK", cwd=root,
        env={**env, "HOOK": fakes.hook_url},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "2 data_fetch_failed" in result.stdout
    kinds = {json.loads(post)["recon"]["kind"] for post in fakes.posts}
    assert {"data_fetch_failed", "unauthorized"} <= kinds, kinds
    alerts = b"\n".join(fakes.posts).decode()
    assert "token (redacted) is revoked" in alerts, "the server's words are kept, the token is not"
    database = b"".join(p.read_bytes() for p in (root / ".recon").glob("runtime.db*"))
    hook_secret = fakes.hook_url.rsplit("/", 1)[1]
    for secret in (fakes.feed_token, fakes.ts_token, hook_secret, "sandbox-secret"):
        assert secret not in result.stdout, secret
        assert secret not in result.stderr, secret
        assert secret not in alerts, secret
        assert secret.encode() not in database, secret
