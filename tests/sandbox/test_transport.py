"""The sandbox's HTTP/1.1 server (transport.LoopServer) on loopback, byte for byte where it
matters: keep-alive, Content-Length and chunked bodies, Expect: 100-continue, Connection:
close and HTTP/1.0, bad request lines and oversized heads, a failing handler, a delayed answer
that does not hold up other connections, handlers kept off the loop unless they say so."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from reconciler.sandbox.transport import LoopbackService, Response, json_response


class Echo(LoopbackService):
    """Answers {method, target, body, thread}; /slow is delayed 0.5 s; /boom raises."""

    thread_name = "echo-sandbox"

    def __init__(self, on_loop: bool) -> None:
        self.on_loop = on_loop

    def runs_on_loop(self, method: str, path: str) -> bool:
        return self.on_loop

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        if target == "/boom":
            raise RuntimeError("a bug in a handler")
        answer = json_response(
            200,
            {
                "method": method,
                "target": target,
                "body": body.decode(),
                "thread": threading.current_thread().name,
                "expect": headers.get("expect", ""),
            },
        )
        return Response(answer.status, answer.body, answer.headers, 0.5 if target == "/slow" else 0.0)


@pytest.fixture(params=[True, False], ids=["handler-on-the-loop", "handler-in-a-worker"])
def echo(request: pytest.FixtureRequest) -> Iterator[Echo]:
    with Echo(request.param) as service:
        yield service


def raw(service: Echo, payload: bytes, *, done_sending: bool = False) -> bytes:
    """Send `payload` on a fresh connection (then half-close it when `done_sending`); everything
    the server sends until it closes or goes quiet for 2 s."""
    host, port = service.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=2) as conn:
        conn.sendall(payload)
        if done_sending:
            conn.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_keep_alive_serves_many_requests_on_one_connection(echo: Echo) -> None:
    with httpx.Client(base_url=echo.base_url) as client:
        answers = [client.post("/items", content=f"n={n}").json() for n in range(20)]
    assert [a["body"] for a in answers] == [f"n={n}" for n in range(20)]
    assert (answers[0]["thread"] == "echo-sandbox") is echo.on_loop, "where the handler ran"


def test_a_chunked_body_is_reassembled(echo: Echo) -> None:
    with httpx.Client(base_url=echo.base_url) as client:
        answer = client.post("/upload", content=iter([b"hello ", b"chunked ", b"world"])).json()
    assert answer["body"] == "hello chunked world"


def test_expect_100_continue_is_answered_before_the_body(echo: Echo) -> None:
    got = raw(
        echo,
        b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert b'"body": "ok"' in got


@pytest.mark.parametrize(
    ("request_bytes", "closes"),
    [
        (b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", True),
        (b"GET /a HTTP/1.0\r\n\r\n", True),
        (b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False),
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", False),
    ],
    ids=["1.1-connection-close", "1.0-default-close", "1.0-keep-alive", "1.1-default-keep-alive"],
)
def test_the_connection_is_closed_only_when_asked(echo: Echo, request_bytes: bytes, closes: bool) -> None:
    started = time.monotonic()
    got = raw(echo, request_bytes)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert (b"Connection: close\r\n" in got) is closes
    assert (time.monotonic() - started < 1.5) is closes, "a kept-alive connection stays open until the client goes"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET /a SPDY/3\r\n\r\n", b"400"),
        (b"GET /a HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nContent-Length: many\r\n\r\n", b"400"),
        (b"GET /a HTTP/1.1\r\nX-Big: " + b"x" * 70_000 + b"\r\n\r\n", b"431"),
    ],
    ids=["no-request-line", "not-http", "header-without-colon", "content-length-not-a-number", "head-over-64k"],
)
def test_a_malformed_request_gets_a_4xx_and_the_connection_closes(
    echo: Echo, request_bytes: bytes, status: bytes
) -> None:
    got = raw(echo, request_bytes, done_sending=True)
    assert got.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"Connection: close\r\n" in got


def test_a_failing_handler_is_a_500_and_the_server_keeps_serving(echo: Echo) -> None:
    with httpx.Client(base_url=echo.base_url) as client:
        failed = client.get("/boom")
        after = client.get("/fine")
    assert failed.status_code == 500
    assert failed.json()["error"] == "internal_error"
    assert "a bug in a handler" not in failed.text, "no internals on the wire"
    assert after.json()["target"] == "/fine"


def test_a_delayed_answer_does_not_hold_up_other_connections(echo: Echo) -> None:
    finished: dict[str, float] = {}
    started = time.monotonic()

    def get(path: str) -> None:
        with httpx.Client(base_url=echo.base_url) as client:
            client.get(path).raise_for_status()
        finished[path] = time.monotonic() - started

    slow = threading.Thread(target=get, args=("/slow",))
    slow.start()
    get("/fast")
    slow.join(timeout=5)
    assert finished["/slow"] >= 0.5, "the delay is honoured"
    assert finished["/fast"] < finished["/slow"], "the quick answer did not wait behind it"


def test_stop_closes_kept_alive_connections_and_frees_the_port() -> None:
    service = Echo(True)
    service.start()
    client = httpx.Client(base_url=service.base_url)
    assert client.get("/a").status_code == 200
    service.stop()
    with pytest.raises(httpx.TransportError):
        client.get("/a")
    client.close()
    service.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = service.base_url
