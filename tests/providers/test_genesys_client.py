"""The Genesys Cloud client against a scripted fake platform (httpx.MockTransport): auth and
token reuse, retries and their waits (recorded by a fake sleep, never slept), error mapping,
paging and the rate limiter. No network, no real time."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest

from reconciler.providers.base import ProviderError
from reconciler.providers.genesys import (
    MAX_PAGE_SIZE,
    AuthenticationError,
    ClientCredentials,
    Endpoints,
    ForbiddenError,
    GenesysClient,
    GenesysError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    ResponseError,
    ServerError,
    TokenBucket,
    endpoints,
    require_field,
)

CLIENT_ID = "client-id-123"
SECRET = "s3cr3t-value-never-shown"
BASE = Endpoints(login_base="http://127.0.0.1:9999", api_base="http://127.0.0.1:9999")
POLICIES = "/api/v2/recording/mediaretentionpolicies"
QUEUES = "/api/v2/routing/queues"

Reply = Callable[[httpx.Request], httpx.Response]
T = TypeVar("T")


def reply(
    status: int = 200, body: Any = None, *, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> Reply:
    """A factory of fresh responses (a Response object cannot be sent twice)."""

    def make(_: httpx.Request) -> httpx.Response:
        if raw is not None:
            return httpx.Response(status, content=raw, headers=headers)
        return httpx.Response(status, json=body if body is not None else {}, headers=headers)

    return make


def fail(exc: type[httpx.TransportError]) -> Reply:
    def make(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return make


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeGenesys:
    """Login and API in one handler. API replies are taken in order; the last one repeats."""

    api: list[Reply] = field(default_factory=lambda: [reply(200, {"ok": True})])
    token: list[Reply] | None = None
    expires_in: int = 86400
    api_requests: list[httpx.Request] = field(default_factory=list)
    token_requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_requests.append(request)
            if self.token:
                return (self.token.pop(0) if len(self.token) > 1 else self.token[0])(request)
            number = len(self.token_requests)
            return httpx.Response(
                200, json={"access_token": f"token-{number}", "token_type": "bearer", "expires_in": self.expires_in}
            )
        self.api_requests.append(request)
        handler = self.api.pop(0) if len(self.api) > 1 else self.api[0]
        return handler(request)


@dataclass
class Rig:
    fake: FakeGenesys
    client: GenesysClient
    clock: FakeClock
    delays: list[float]


def rig(fake: FakeGenesys | None = None, **options: Any) -> Rig:
    fake = fake or FakeGenesys()
    clock = FakeClock()
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        clock.now += seconds

    options.setdefault("rng", lambda: 0.0)
    client = GenesysClient(
        BASE, CLIENT_ID, SECRET, transport=httpx.MockTransport(fake), sleep=sleep, clock=clock, **options
    )
    return Rig(fake, client, clock, delays)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def call(r: Rig, path: str = POLICIES) -> Any:
    try:
        return await r.client.get(path)
    finally:
        await r.client.aclose()


def bearer(request: httpx.Request) -> str:
    return request.headers["Authorization"]


# -- auth ------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused_across_calls() -> None:
    r = rig()

    async def scenario() -> None:
        for _ in range(3):
            assert await r.client.get(POLICIES) == {"ok": True}
        await r.client.aclose()

    run(scenario())
    assert len(r.fake.token_requests) == 1
    assert [bearer(q) for q in r.fake.api_requests] == ["Bearer token-1"] * 3
    assert r.client.requests == 4
    assert r.client.token_requests == 1


def test_concurrent_callers_share_one_token_fetch() -> None:
    r = rig()

    async def scenario() -> None:
        await asyncio.gather(*(r.client.get(POLICIES) for _ in range(10)))
        await r.client.aclose()

    run(scenario())
    assert len(r.fake.token_requests) == 1
    assert len(r.fake.api_requests) == 10


def test_token_request_sends_basic_credentials_and_client_credentials_grant() -> None:
    r = rig()
    run(call(r))
    (request,) = r.fake.token_requests
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:9999/oauth/token"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"]}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("elapsed", "fetches"),
    [
        pytest.param(0, 1, id="fresh-token-reused"),
        pytest.param(3600 - 61, 1, id="61s-before-expiry-still-reused"),
        pytest.param(3600 - 59, 2, id="59s-before-expiry-refreshed"),
        pytest.param(3600 + 10, 2, id="expired-refreshed"),
    ],
)
def test_token_is_refreshed_60s_before_expiry(elapsed: float, fetches: int) -> None:
    r = rig(FakeGenesys(expires_in=3600))

    async def scenario() -> None:
        await r.client.get(POLICIES)
        r.clock.now += elapsed
        await r.client.get(POLICIES)
        await r.client.aclose()

    run(scenario())
    assert len(r.fake.token_requests) == fetches
    assert bearer(r.fake.api_requests[-1]) == f"Bearer token-{fetches}"


def test_api_401_refreshes_the_token_once_and_retries() -> None:
    r = rig(FakeGenesys(api=[reply(401, {"message": "expired"}), reply(200, {"id": "p1"})]))
    assert run(call(r)) == {"id": "p1"}
    assert len(r.fake.token_requests) == 2
    assert [bearer(q) for q in r.fake.api_requests] == ["Bearer token-1", "Bearer token-2"]


def test_persistent_401_is_an_authentication_error_without_secrets() -> None:
    r = rig(FakeGenesys(api=[reply(401, {"message": "bad token"})]))
    with pytest.raises(AuthenticationError) as caught:
        run(call(r))
    text = str(caught.value)
    assert "credentials were rejected" in text
    assert f"GET {POLICIES}" in text
    assert "clientSecret" in text  # the next step points at the references
    assert SECRET not in text and "token-1" not in text and "token-2" not in text
    assert len(r.fake.api_requests) == 2
    assert r.delays == []


@pytest.mark.parametrize(
    "status",
    [pytest.param(400, id="400-invalid-client"), pytest.param(401, id="401-unauthorized")],
)
def test_token_endpoint_refusal_is_an_authentication_error(status: int) -> None:
    refusal = reply(status, {"error": "invalid_client", "description": "client not found"})
    r = rig(FakeGenesys(token=[refusal]))
    with pytest.raises(AuthenticationError) as caught:
        run(call(r))
    assert SECRET not in str(caught.value)
    assert "invalid_client" in str(caught.value)
    assert r.fake.api_requests == []
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        pytest.param({"token_type": "bearer", "expires_in": 60}, "access_token", id="no-access-token"),
        pytest.param({"access_token": "t", "token_type": "bearer"}, "expires_in", id="no-expires-in"),
    ],
)
def test_token_response_missing_a_field_is_a_response_error(body: dict[str, Any], field_name: str) -> None:
    r = rig(FakeGenesys(token=[reply(200, body)]))
    with pytest.raises(ResponseError) as caught:
        run(call(r))
    assert field_name in str(caught.value)
    assert "POST /oauth/token" in str(caught.value)


# -- retries ---------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds() -> None:
    r = rig(
        FakeGenesys(api=[reply(429, {"code": "too.many.requests.retry.after"}, headers={"Retry-After": "3"}), reply()]),
        rng=lambda: 0.5,
    )
    assert run(call(r)) == {}
    assert r.delays == [pytest.approx(3.25)]
    assert len(r.fake.api_requests) == 2


def test_429_without_retry_after_waits_one_second() -> None:
    r = rig(FakeGenesys(api=[reply(429), reply()]))
    run(call(r))
    assert r.delays == [1.0]


def test_429_forever_is_rate_limited_after_max_retries() -> None:
    r = rig(FakeGenesys(api=[reply(429, headers={"Retry-After": "2"})]), max_retries=3)
    with pytest.raises(RateLimitedError) as caught:
        run(call(r))
    assert len(r.fake.api_requests) == 4  # one try + three retries
    assert r.delays == [2.0, 2.0, 2.0]
    assert caught.value.retryable
    assert f"GET {POLICIES}" in str(caught.value)


def test_server_errors_are_retried_with_exponential_backoff() -> None:
    r = rig(FakeGenesys(api=[reply(500), reply(502), reply(503), reply(200, {"done": 1})]))
    assert run(call(r)) == {"done": 1}
    assert len(r.fake.api_requests) == 4
    assert r.delays == [0.5, 1.0, 2.0]


def test_server_error_forever_is_a_retryable_server_error() -> None:
    r = rig(FakeGenesys(api=[reply(503, {"message": "try later"})]), max_retries=2)
    with pytest.raises(ServerError) as caught:
        run(call(r))
    assert len(r.fake.api_requests) == 3
    assert caught.value.retryable
    assert "HTTP 503" in str(caught.value) and "try later" in str(caught.value)


@pytest.mark.parametrize(
    "exc",
    [pytest.param(httpx.ConnectError, id="connect-error"), pytest.param(httpx.ReadTimeout, id="read-timeout")],
)
def test_transport_errors_are_retried_then_reported_with_the_endpoint(exc: type[httpx.TransportError]) -> None:
    recovered = rig(FakeGenesys(api=[fail(exc), reply(200, {"ok": 1})]))
    assert run(call(recovered)) == {"ok": 1}
    assert recovered.delays == [0.5]

    broken = rig(FakeGenesys(api=[fail(exc)]), max_retries=2)
    with pytest.raises(ServerError) as caught:
        run(call(broken))
    assert len(broken.fake.api_requests) == 3
    assert caught.value.retryable
    assert f"GET {POLICIES}" in str(caught.value) and exc.__name__ in str(caught.value)


PERMISSION_BODY = {
    "message": "You are missing the following permission(s): recording:retentionPolicy:view",
    "code": "missing.permissions",
    "status": 403,
    "messageParams": {"permissions": "recording:retentionPolicy:view"},
}


@pytest.mark.parametrize(
    ("status", "body", "error", "fragments"),
    [
        pytest.param(
            403,
            PERMISSION_BODY,
            ForbiddenError,
            ["recording:retentionPolicy:view", f"GET {POLICIES}"],
            id="403-names-permission",
        ),
        pytest.param(403, {"message": "nope"}, ForbiddenError, ["nope", f"GET {POLICIES}"], id="403-without-params"),
        pytest.param(
            404, {"message": "policy not found"}, NotFoundError, ["HTTP 404", f"GET {POLICIES}"], id="404-not-found"
        ),
        pytest.param(400, {"message": "bad order"}, RequestRejectedError, ["bad order"], id="400-rejected"),
        pytest.param(409, {"message": "conflict"}, RequestRejectedError, ["HTTP 409"], id="409-rejected"),
        pytest.param(501, {}, ServerError, ["HTTP 501"], id="501-not-retried"),
    ],
)
def test_non_retryable_statuses_fail_at_once(
    status: int, body: dict[str, Any], error: type[GenesysError], fragments: list[str]
) -> None:
    r = rig(FakeGenesys(api=[reply(status, body)]))
    with pytest.raises(error) as caught:
        run(call(r))
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert caught.value.status == status
    assert len(r.fake.api_requests) == 1
    assert r.delays == []
    assert not caught.value.retryable


def test_forbidden_error_lists_permissions() -> None:
    r = rig(FakeGenesys(api=[reply(403, PERMISSION_BODY)]))
    with pytest.raises(ForbiddenError) as caught:
        run(call(r))
    assert caught.value.permissions == ["recording:retentionPolicy:view"]
    assert "grant recording:retentionPolicy:view" in caught.value.next_step


def test_malformed_json_is_a_response_error_naming_the_endpoint() -> None:
    r = rig(FakeGenesys(api=[reply(200, raw=b"<html>proxy login</html>")]))
    with pytest.raises(ResponseError) as caught:
        run(call(r))
    assert f"GET {POLICIES}" in str(caught.value)
    assert isinstance(caught.value, ProviderError)


def test_empty_body_decodes_to_none() -> None:
    r = rig(FakeGenesys(api=[reply(204, raw=b"")]))
    assert run(r.client.delete(f"{POLICIES}/p1")) is None


def test_verbs_send_method_json_and_params() -> None:
    r = rig()

    async def scenario() -> None:
        await r.client.post(POLICIES, json={"name": "a"})
        await r.client.put(f"{POLICIES}/p1", json={"name": "b"}, params={"force": "true"})
        await r.client.patch(f"{POLICIES}/p1", json={"enabled": False})
        await r.client.delete(f"{POLICIES}/p1")
        await r.client.aclose()

    run(scenario())
    sent = [(q.method, q.url.path, q.url.query.decode(), json.loads(q.content or b"null")) for q in r.fake.api_requests]
    assert sent == [
        ("POST", POLICIES, "", {"name": "a"}),
        ("PUT", f"{POLICIES}/p1", "force=true", {"name": "b"}),
        ("PATCH", f"{POLICIES}/p1", "", {"enabled": False}),
        ("DELETE", f"{POLICIES}/p1", "", None),
    ]


# -- paging ----------------------------------------------------------------------------


def numbered_pages(request: httpx.Request) -> httpx.Response:
    number = int(request.url.params["pageNumber"])
    size = int(request.url.params["pageSize"])
    return httpx.Response(
        200,
        json={
            "entities": [{"id": f"q{number}-{i}"} for i in range(2)],
            "pageSize": size,
            "pageNumber": number,
            "total": 6,
            "pageCount": 3,
        },
    )


def linked_pages(next_base: str) -> Reply:
    def make(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("pageNumber", "1"))
        body: dict[str, Any] = {"entities": [{"id": f"p{number}"}], "pageNumber": number, "pageCount": 3}
        if number < 3:
            body["nextUri"] = f"{next_base}{POLICIES}?pageSize=25&pageNumber={number + 1}"
        return httpx.Response(200, json=body)

    return make


async def collect(r: Rig, path: str, **options: Any) -> list[Any]:
    try:
        return [entity async for entity in r.client.paginate(path, **options)]
    finally:
        await r.client.aclose()


def test_paginate_follows_page_numbers_until_page_count() -> None:
    r = rig(FakeGenesys(api=[numbered_pages]))
    got = run(collect(r, QUEUES, params={"name": "Desk*"}, page_size=250))
    assert [e["id"] for e in got] == ["q1-0", "q1-1", "q2-0", "q2-1", "q3-0", "q3-1"]
    assert [q.url.params["pageNumber"] for q in r.fake.api_requests] == ["1", "2", "3"]
    assert {q.url.params["pageSize"] for q in r.fake.api_requests} == {"250"}
    assert {q.url.params["name"] for q in r.fake.api_requests} == {"Desk*"}
    assert r.client.requests == 4  # three pages and one token


@pytest.mark.parametrize(
    "next_base",
    [
        pytest.param("", id="relative-nextUri"),
        pytest.param("https://elsewhere.example", id="absolute-nextUri-kept-on-our-host"),
    ],
)
def test_paginate_follows_next_uri(next_base: str) -> None:
    r = rig(FakeGenesys(api=[linked_pages(next_base)]))
    got = run(collect(r, POLICIES, page_size=25))
    assert [e["id"] for e in got] == ["p1", "p2", "p3"]
    assert {q.url.host for q in r.fake.api_requests} == {"127.0.0.1"}
    assert [q.url.params["pageNumber"] for q in r.fake.api_requests] == ["1", "2", "3"]


def test_paginate_defaults_to_the_endpoint_maximum_page_size() -> None:
    r = rig(FakeGenesys(api=[reply(200, {"entities": [], "pageNumber": 1, "pageCount": 0, "total": 0})]))
    assert run(collect(r, POLICIES)) == []
    assert r.fake.api_requests[0].url.params["pageSize"] == str(MAX_PAGE_SIZE[POLICIES])


def test_paginate_without_entities_is_a_response_error() -> None:
    r = rig(FakeGenesys(api=[reply(200, {"pageNumber": 1, "pageCount": 2, "total": 5})]))
    with pytest.raises(ResponseError) as caught:
        run(collect(r, QUEUES))
    assert "'entities'" in str(caught.value) and f"GET {QUEUES}" in str(caught.value)


def test_paginate_cursor_passes_each_cursor_back() -> None:
    pages = [
        reply(200, {"entities": [{"id": 1}], "cursor": "c1"}),
        reply(200, {"entities": [{"id": 2}], "cursor": "c2"}),
        reply(200, {"entities": [{"id": 3}]}),
    ]
    r = rig(FakeGenesys(api=pages))

    async def scenario() -> list[Any]:
        try:
            return [e async for e in r.client.paginate_cursor("/api/v2/recordings/retention/query", page_size=500)]
        finally:
            await r.client.aclose()

    assert [e["id"] for e in run(scenario())] == [1, 2, 3]
    assert [q.url.params.get("cursor") for q in r.fake.api_requests] == [None, "c1", "c2"]
    assert {q.url.params["pageSize"] for q in r.fake.api_requests} == {"500"}


# -- rate limiting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "expected_waits"),
    [
        pytest.param(300, 1, id="burst-300-only-the-301st-waits"),
        pytest.param(50, 251, id="burst-50-all-beyond-the-burst-wait"),
    ],
)
def test_token_bucket_never_exceeds_the_configured_rate(capacity: int, expected_waits: int) -> None:
    clock = FakeClock()
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        clock.now += seconds

    bucket = TokenBucket(300, capacity, clock=clock, sleep=sleep)
    times: list[float] = []

    async def scenario() -> None:
        for _ in range(301):
            await bucket.acquire()
            times.append(clock.now)

    run(scenario())
    assert len(delays) == expected_waits
    assert all(d == pytest.approx(0.2) for d in delays)
    rate = 300 / 60
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= capacity + rate * (times[j] - times[i]) + 1e-6


def test_every_request_goes_through_the_rate_limiter() -> None:
    r = rig(rate_per_minute=60, burst=2)

    async def scenario() -> None:
        for _ in range(4):
            await r.client.get(POLICIES)
        await r.client.aclose()

    run(scenario())
    assert r.delays == [pytest.approx(1.0), pytest.approx(1.0)]
    assert r.client.limiter.waited == pytest.approx(2.0)


# -- regions and secrecy ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "login", "api"),
    [
        pytest.param("us-east-1", "https://login.mypurecloud.com", "https://api.mypurecloud.com", id="us-east-1"),
        pytest.param("eu-west-1", "https://login.mypurecloud.ie", "https://api.mypurecloud.ie", id="eu-west-1"),
        pytest.param("ap-south-1", "https://login.aps1.pure.cloud", "https://api.aps1.pure.cloud", id="ap-south-1"),
    ],
)
def test_region_endpoints(region: str, login: str, api: str) -> None:
    assert endpoints(region) == Endpoints(login_base=login, api_base=api)


def test_unknown_region_names_the_known_ones() -> None:
    with pytest.raises(ProviderError) as caught:
        endpoints("mars-1")
    assert "eu-west-1" in caught.value.next_step


def test_explicit_endpoints_drop_a_trailing_slash() -> None:
    assert Endpoints("http://127.0.0.1:1/", "http://127.0.0.1:1/").api_base == "http://127.0.0.1:1"


def test_repr_never_shows_the_secret() -> None:
    r = rig()
    run(call(r))
    for thing in (r.client, r.client._auth, ClientCredentials(CLIENT_ID, SECRET)):
        assert SECRET not in repr(thing)
        assert "token-1" not in repr(thing)
    assert CLIENT_ID in repr(r.client)


def test_require_field_names_endpoint_and_field() -> None:
    assert require_field({"id": "p1"}, "id", f"GET {POLICIES}/p1") == "p1"
    with pytest.raises(ResponseError) as caught:
        require_field({"name": "x"}, "id", f"POST {POLICIES}")
    assert "'id'" in str(caught.value) and f"POST {POLICIES}" in str(caught.value)


def test_token_endpoint_outage_is_retried_with_backoff() -> None:
    r = rig(
        FakeGenesys(token=[reply(503), reply(200, {"access_token": "t9", "token_type": "bearer", "expires_in": 3600})])
    )
    assert run(call(r)) == {"ok": True}
    assert r.delays == [0.5]
    assert bearer(r.fake.api_requests[0]) == "Bearer t9"
    assert r.client.token_requests == 2


def test_token_endpoint_outage_forever_is_a_retryable_server_error() -> None:
    r = rig(FakeGenesys(token=[fail(httpx.ConnectError)]), max_retries=1)
    with pytest.raises(ServerError) as caught:
        run(call(r))
    assert caught.value.retryable and SECRET not in str(caught.value)
    assert r.fake.api_requests == []
