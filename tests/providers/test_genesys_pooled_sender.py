"""GenesysClient over the pooled aiohttp engine (`PooledSender`), against the Genesys sandbox on
loopback: the same answers as over httpx, the retry loop unchanged (5xx, 429 with Retry-After,
refused connections, timeouts), query encoding, proxies from the environment. Waits between
retries go to a fake sleep; nothing is slept but the sandbox's own latency knob."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from yarl import URL

from reconciler.providers.genesys import Endpoints, GenesysClient, NotFoundError, ServerError
from reconciler.providers.genesys.transport import PooledSender, _query
from reconciler.sandbox import GenesysSandbox

QUEUES = "/api/v2/routing/queues"
T = TypeVar("T")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=21) as sb:
        yield sb


def client(
    sb: GenesysSandbox, sender: PooledSender | None, waits: list[float] | None = None, **kw: Any
) -> GenesysClient:
    async def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    endpoints = Endpoints(login_base=sb.base_url, api_base=sb.base_url)
    return GenesysClient(endpoints, sb.client_id, sb.client_secret, sender=sender, sleep=sleep, **kw)


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(make())


def test_the_pooled_engine_reads_what_httpx_reads(sandbox: GenesysSandbox) -> None:
    sender = PooledSender()

    async def both() -> tuple[list[Any], list[Any], bool]:
        async with client(sandbox, sender) as pooled, client(sandbox, None) as plain:
            fast = [q async for q in pooled.paginate(QUEUES)]
            slow = [q async for q in plain.paginate(QUEUES)]
            return fast, slow, sender._session is not None

    fast, slow, used = run(both)
    assert fast == slow
    assert len(fast) >= 3
    assert used  # the API requests went through the pooled engine
    assert sender._session is None  # and closing the client closed it


def test_a_write_and_a_missing_object_through_the_pooled_engine(sandbox: GenesysSandbox) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with client(sandbox, PooledSender()) as api:
            queue = (await api.get(QUEUES, {"pageSize": 1}))["entities"][0]
            changed = await api.put(f"{QUEUES}/{queue['id']}", json={**queue, "description": "pooled write"})
            again = await api.get(f"{QUEUES}/{queue['id']}")
            with pytest.raises(NotFoundError):
                await api.get(f"{QUEUES}/00000000-0000-0000-0000-000000000000")
            return changed, again

    changed, again = run(scenario)
    assert changed["description"] == again["description"] == "pooled write"


@pytest.mark.parametrize(
    ("faults", "retried"),
    [({"rate_5xx": 0.5}, True), ({"rate_429": 0.5}, True)],
    ids=["503s-are-retried-with-backoff", "429s-wait-retry-after-then-retry"],
)
def test_retries_work_the_same_through_the_pooled_engine(
    sandbox: GenesysSandbox, faults: dict[str, float], retried: bool
) -> None:
    waits: list[float] = []
    sandbox.set_faults(**faults)  # type: ignore[arg-type]
    try:

        async def scenario() -> tuple[int, int]:
            async with client(sandbox, PooledSender(), waits, max_retries=20) as api:
                for _ in range(20):
                    await api.get(QUEUES, {"pageSize": 1})
                return api.retries, api.requests

        retries, requests = run(scenario)
        assert requests > 20  # the retried requests were sent again
    finally:
        sandbox.set_faults(rate_5xx=0, rate_429=0)
    assert (retries > 0) is retried
    assert len(waits) == retries
    if "rate_429" in faults:
        assert all(w >= 1.0 for w in waits)  # the sandbox's Retry-After header was read


def test_a_refused_connection_is_a_server_error_after_the_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def scenario() -> None:
        api = GenesysClient(
            Endpoints(login_base=dead, api_base=dead), "id", "secret", sender=PooledSender(), sleep=sleep
        )
        api._auth._token, api._auth._expires_at = "token", float("inf")  # no login host either
        async with api:
            await api.get(QUEUES)

    with pytest.raises(ServerError, match="ConnectError"):
        run(scenario)
    assert len(waits) == 5


def test_a_slow_answer_is_a_timeout_then_a_server_error(sandbox: GenesysSandbox) -> None:
    sandbox.set_faults(latency_ms=400)
    try:

        async def scenario() -> None:
            async with client(sandbox, PooledSender(timeout=0.1), [], max_retries=1) as api:
                api._auth._token, api._auth._expires_at = await _token(sandbox), float("inf")
                await api.get(QUEUES)

        with pytest.raises(ServerError, match="ReadTimeout"):
            run(scenario)
    finally:
        sandbox.set_faults(latency_ms=0)


async def _token(sb: GenesysSandbox) -> str:
    async with client(sb, None) as api:
        return await api._auth.token()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"pageSize": 25}, [("pageSize", "25")]),
        ({"expand": ["members", "division"]}, [("expand", "members"), ("expand", "division")]),
        (
            {"divisionId": "d-1", "active": True, "deleted": False},
            [("divisionId", "d-1"), ("active", "true"), ("deleted", "false")],
        ),
    ],
    ids=["int", "list-repeats-the-key", "booleans-as-json-words"],
)
def test_query_parameters_are_encoded_as_httpx_does(params: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert _query(params) == expected


def test_proxies_come_from_the_environment_and_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.bank.example:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    sender = PooledSender()
    assert sender._proxy(URL("https://api.mypurecloud.de/api/v2/x")) == "http://proxy.bank.example:3128"
    assert sender._proxy(URL("http://127.0.0.1:8080/api/v2/x")) is None
