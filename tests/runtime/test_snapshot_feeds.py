"""Feed adapters against in-process feeds (httpx.MockTransport): wire requests, snapshot mapping,
every failure form, Refinitiv token caching, and the mTLS client-key handling."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reconciler.manifest.kinds.runtime import MarketDataFeedSpec
from reconciler.runtime.snapshot.feedconfig import (
    FeedConfigError,
    FeedError,
    FeedSettings,
    InstrumentRef,
    Provider,
    TlsSettings,
    tls_context,
)
from reconciler.runtime.snapshot.feeds import FeedAdapter, RefinitivAdapter, build_adapter, normalise_timestamp

URL = "https://feed.example:8443/v1/snapshot"
EURUSD = InstrumentRef("EUR/USD", "mid", "eurusd_spot")
SHELL = InstrumentRef("RDSa.L", "last", "shell_last")
INSTRUMENTS = (EURUSD, SHELL)
SECRETS = {"env:FEED_TOKEN": "tok-123", "env:RDP_SECRET": "s3cr3t"}
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(provider: Provider, **extra: Any) -> FeedSettings:
    return FeedSettings(name="fx", provider=provider, url=URL, instruments=INSTRUMENTS, **extra)


def adapter(provider: Provider, handler: Handler, clock: Clock | None = None, **extra: Any) -> FeedAdapter:
    return build_adapter(
        settings(provider, **extra), SECRETS.__getitem__, transport=httpx.MockTransport(handler), clock=clock or Clock()
    )


def fetch(feed: FeedAdapter) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        try:
            return dict(await feed.fetch(INSTRUMENTS))
        finally:
            await feed.aclose()

    return asyncio.run(go())


def failure(feed: FeedAdapter) -> FeedError:
    with pytest.raises(FeedError) as caught:
        fetch(feed)
    return caught.value


def reply(body: Any, status: int = 200) -> Handler:
    async def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    return handle


EXPECTED = {
    "timestamp_utc": "2026-10-27T14:30:00.123Z",
    "eurusd_spot": 1.089,
    "shell_last": 2.45,
}

# -- generic-rest / ice -------------------------------------------------------------------

REST_OK = {
    "timestamp": "2026-10-27T15:30:00.123+01:00",
    "data": {"EUR/USD": {"mid": 1.089}, "RDSa.L": {"last": 2.45}},
}


@pytest.mark.parametrize("provider", ["generic-rest", "ice"])
def test_rest_maps_symbol_and_field_to_as_keeping_slashes_and_periods(provider: Provider) -> None:
    seen: list[httpx.Request] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REST_OK)

    snapshot = fetch(adapter(provider, handle, token="env:FEED_TOKEN"))

    assert snapshot == {**EXPECTED, "source_provider": provider}
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/v1/snapshot"
    assert b"symbols=EUR/USD,RDSa.L" in request.url.query
    assert parse_qs(request.url.query.decode()) == {"symbols": ["EUR/USD,RDSa.L"], "fields": ["mid,last"]}
    assert request.headers["Authorization"] == "Bearer tok-123"


def test_rest_without_token_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REST_OK)

    fetch(adapter("generic-rest", handle))
    assert "Authorization" not in seen[0].headers


def test_rest_query_keeps_the_urls_own_parameters_and_encodes_spaces() -> None:
    seen: list[httpx.Request] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"timestamp": "2026-10-27T14:30:00Z", "data": {"EUR/USD 3M": {"fwd": 12.5}}})

    feed = build_adapter(
        FeedSettings("fx", "generic-rest", URL + "?desk=fx", (InstrumentRef("EUR/USD 3M", "fwd", "pts"),)),
        SECRETS.__getitem__,
        transport=httpx.MockTransport(handle),
    )

    async def go() -> dict[str, Any]:
        return dict(await feed.fetch(feed.settings.instruments))

    assert asyncio.run(go())["pts"] == 12.5
    assert parse_qs(seen[0].url.query.decode()) == {"desk": ["fx"], "symbols": ["EUR/USD 3M"], "fields": ["fwd"]}


@pytest.mark.parametrize(
    ("body", "status", "category"),
    [
        pytest.param(REST_OK, 503, "http status", id="non-2xx"),
        pytest.param(REST_OK, 302, "http status", id="redirect-not-followed"),
        pytest.param(b"{not json", 200, "bad response", id="invalid-json"),
        pytest.param([1, 2], 200, "bad response", id="not-an-object"),
        pytest.param({"timestamp": "2026-10-27T14:30:00Z"}, 200, "bad response", id="no-data"),
        pytest.param({**REST_OK, "data": {"EUR/USD": {"mid": 1.089}}}, 200, "missing data", id="missing-symbol"),
        pytest.param(
            {**REST_OK, "data": {"EUR/USD": {"mid": 1.089}, "RDSa.L": {"bid": 2.4}}},
            200,
            "missing data",
            id="missing-field",
        ),
        pytest.param(
            {**REST_OK, "data": {"EUR/USD": {"mid": None}, "RDSa.L": {"last": 2.45}}},
            200,
            "missing data",
            id="null-value",
        ),
        pytest.param(
            {**REST_OK, "data": {"EUR/USD": {"mid": [1]}, "RDSa.L": {"last": 2.45}}},
            200,
            "bad response",
            id="list-value",
        ),
        pytest.param(
            {**REST_OK, "data": {"EUR/USD": {"mid": True}, "RDSa.L": {"last": 2.45}}},
            200,
            "bad response",
            id="bool-value",
        ),
        pytest.param({**REST_OK, "timestamp": 1761575400}, 200, "bad response", id="epoch-timestamp"),
        pytest.param({"data": REST_OK["data"]}, 200, "bad response", id="no-timestamp"),
        pytest.param({**REST_OK, "timestamp": "2026-10-27T14:30:00"}, 200, "bad response", id="naive-timestamp"),
        pytest.param({**REST_OK, "timestamp": "yesterday"}, 200, "bad response", id="bad-timestamp"),
    ],
)
def test_rest_failures(body: Any, status: int, category: str) -> None:
    assert failure(adapter("generic-rest", reply(body, status))).category == category


def test_non_finite_number_is_a_failure() -> None:
    body = b'{"timestamp": "2026-10-27T14:30:00Z", "data": {"EUR/USD": {"mid": NaN}, "RDSa.L": {"last": 1}}}'
    assert failure(adapter("generic-rest", reply(body))).category == "bad response"


def test_transport_error_is_a_failure_without_the_url() -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = failure(adapter("generic-rest", handle, token="env:FEED_TOKEN"))
    assert error.category == "transport"
    assert "ConnectError" in error.message
    assert "tok-123" not in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-27T14:30:00.123Z", "2026-10-27T14:30:00.123Z"),
        ("2026-10-27T14:30:00Z", "2026-10-27T14:30:00.000Z"),
        ("2026-10-27T09:30:00.5-05:00", "2026-10-27T14:30:00.500Z"),
        ("2026-10-27T14:30:00.123456+00:00", "2026-10-27T14:30:00.123456Z"),
    ],
)
def test_timestamps_are_normalised_to_utc_z(text: str, expected: str) -> None:
    assert normalise_timestamp(text) == expected


# -- bloomberg ----------------------------------------------------------------------------

BBG_OK = {
    "status": 0,
    "timestamp": "2026-10-27T14:30:00.123Z",
    "data": [
        {"security": "EUR/USD", "fieldData": {"mid": 1.089}},
        {"security": "RDSa.L", "fieldData": {"last": 2.45}},
    ],
}


def test_bloomberg_posts_securities_and_fields_and_maps_the_answer() -> None:
    seen: list[httpx.Request] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=BBG_OK)

    assert fetch(adapter("bloomberg", handle, token="env:FEED_TOKEN")) == {**EXPECTED, "source_provider": "bloomberg"}
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert json.loads(request.content) == {"securities": ["EUR/USD", "RDSa.L"], "fields": ["mid", "last"]}
    assert request.headers["Authorization"] == "Bearer tok-123"


def _bbg(**changes: Any) -> dict[str, Any]:
    return {**BBG_OK, **changes}


@pytest.mark.parametrize(
    ("body", "status", "category"),
    [
        pytest.param(
            _bbg(responseError={"category": "BAD_SEC", "message": "x"}), 200, "provider error", id="responseError"
        ),
        pytest.param(
            _bbg(
                data=[
                    {"security": "EUR/USD", "fieldData": {"mid": 1.089}},
                    {
                        "security": "RDSa.L",
                        "fieldData": {},
                        "securityError": {"category": "BAD_SEC", "message": "unknown"},
                    },
                ]
            ),
            200,
            "provider error",
            id="securityError",
        ),
        pytest.param(
            _bbg(
                data=[
                    {"security": "EUR/USD", "fieldData": {"mid": 1.089}},
                    {
                        "security": "RDSa.L",
                        "fieldData": {"last": 2.45},
                        "fieldExceptions": [{"fieldId": "last", "errorInfo": {"message": "not entitled"}}],
                    },
                ]
            ),
            200,
            "provider error",
            id="fieldExceptions",
        ),
        pytest.param(_bbg(status=1), 200, "provider error", id="status-not-0"),
        pytest.param({k: v for k, v in BBG_OK.items() if k != "status"}, 200, "provider error", id="status-missing"),
        pytest.param(_bbg(status=False), 200, "provider error", id="status-false"),
        pytest.param(BBG_OK, 500, "http status", id="non-2xx"),
        pytest.param(b"<html>", 200, "bad response", id="invalid-json"),
        pytest.param(
            _bbg(data=[{"security": "EUR/USD", "fieldData": {"mid": 1.089}}]),
            200,
            "missing data",
            id="missing-security",
        ),
        pytest.param(
            _bbg(data=[{"security": "EUR/USD", "fieldData": {"mid": 1.089}}, {"security": "RDSa.L", "fieldData": {}}]),
            200,
            "missing data",
            id="missing-field",
        ),
        pytest.param(_bbg(data={"EUR/USD": {}}), 200, "bad response", id="data-not-a-list"),
    ],
)
def test_bloomberg_failures_even_with_http_200(body: Any, status: int, category: str) -> None:
    error = failure(adapter("bloomberg", reply(body, status)))
    assert error.category == category


def test_bloomberg_field_exception_for_a_field_not_needed_from_that_security_is_ignored() -> None:
    # Fields are requested for every security; "last" of EUR/USD is not one we map.
    body = _bbg(
        data=[
            {
                "security": "EUR/USD",
                "fieldData": {"mid": 1.089},
                "fieldExceptions": [{"fieldId": "last", "errorInfo": {"message": "not applicable"}}],
            },
            {"security": "RDSa.L", "fieldData": {"last": 2.45}},
        ]
    )
    assert fetch(adapter("bloomberg", reply(body)))["eurusd_spot"] == 1.089


# -- refinitiv ----------------------------------------------------------------------------

RDP_OK = {
    "timestamp": "2026-10-27T14:30:00.123Z",
    "headers": [{"name": "instrument"}, {"name": "mid"}, {"name": "last"}],
    "data": [["EUR/USD", 1.089, None], ["RDSa.L", None, 2.45]],
}
TOKEN_URL = "https://feed.example:8443/auth/oauth2/v1/token"


class Rdp:
    """A Refinitiv feed: counts token and data requests; `refuse` data calls answer 401 first."""

    def __init__(self, *, expires_in: int = 600, refuse: int = 0, body: Any = None) -> None:
        self.token_requests: list[httpx.Request] = []
        self.data_requests: list[httpx.Request] = []
        self.expires_in = expires_in
        self.refuse = refuse
        self.body = body or RDP_OK

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            self.token_requests.append(request)
            n = len(self.token_requests)
            return httpx.Response(
                200, json={"access_token": f"t{n}", "expires_in": self.expires_in, "token_type": "Bearer"}
            )
        self.data_requests.append(request)
        if self.refuse > 0:
            self.refuse -= 1
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json=self.body)


def rdp_adapter(feed: Rdp, clock: Clock | None = None) -> RefinitivAdapter:
    built = adapter("refinitiv", feed, clock, client_id="desk-app", client_secret="env:RDP_SECRET")
    assert isinstance(built, RefinitivAdapter)
    return built


def test_refinitiv_token_then_data_with_bearer_and_mapping() -> None:
    feed = Rdp()
    assert fetch(rdp_adapter(feed)) == {**EXPECTED, "source_provider": "refinitiv"}
    (token_request,) = feed.token_requests
    assert str(token_request.url) == TOKEN_URL
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["desk-app"],
        "client_secret": ["s3cr3t"],
    }
    (data_request,) = feed.data_requests
    assert parse_qs(data_request.url.query.decode()) == {"universe": ["EUR/USD,RDSa.L"], "fields": ["mid,last"]}
    assert data_request.headers["Authorization"] == "Bearer t1"


def test_refinitiv_token_is_fetched_once_for_100_concurrent_fetches() -> None:
    feed = Rdp()
    feed_adapter = rdp_adapter(feed)

    async def go() -> list[Any]:
        # All 100 reach the token source before the one token request is answered.
        results = list(await asyncio.gather(*(feed_adapter.fetch(INSTRUMENTS) for _ in range(100))))
        results.append(await feed_adapter.fetch(INSTRUMENTS))  # later: served from the cache
        await feed_adapter.aclose()
        return results

    results = asyncio.run(go())
    assert len(feed.token_requests) == 1
    assert feed_adapter.tokens.requests == 1
    assert len(feed.data_requests) == 101
    assert all(r["eurusd_spot"] == 1.089 for r in results)


def test_refinitiv_401_refreshes_once_and_retries_once() -> None:
    feed = Rdp(refuse=1)
    assert fetch(rdp_adapter(feed))["shell_last"] == 2.45
    assert len(feed.token_requests) == 2
    assert [r.headers["Authorization"] for r in feed.data_requests] == ["Bearer t1", "Bearer t2"]


def test_refinitiv_second_401_is_a_failure_without_more_retries() -> None:
    feed = Rdp(refuse=5)
    assert failure(rdp_adapter(feed)).category == "auth"
    assert len(feed.token_requests) == 2
    assert len(feed.data_requests) == 2


def test_refinitiv_token_refreshed_after_expiry_and_ahead_of_it_in_the_background() -> None:
    feed = Rdp(expires_in=300)
    clock = Clock()
    feed_adapter = rdp_adapter(feed, clock)

    async def go() -> None:
        await feed_adapter.fetch(INSTRUMENTS)
        clock.now += 200  # fresh: cached
        await feed_adapter.fetch(INSTRUMENTS)
        assert len(feed.token_requests) == 1
        clock.now += 80  # inside the 30 s margin: served with t1, t2 fetched in the background
        await feed_adapter.fetch(INSTRUMENTS)
        assert feed.data_requests[-1].headers["Authorization"] == "Bearer t1"
        refresh = feed_adapter.tokens._inflight
        assert refresh is not None
        await refresh
        assert len(feed.token_requests) == 2
        await feed_adapter.fetch(INSTRUMENTS)
        assert feed.data_requests[-1].headers["Authorization"] == "Bearer t2"
        clock.now += 1000  # t2 expired: the fetch waits for t3
        await feed_adapter.fetch(INSTRUMENTS)
        assert feed.data_requests[-1].headers["Authorization"] == "Bearer t3"
        await feed_adapter.aclose()

    asyncio.run(go())
    assert len(feed.token_requests) == 3


def test_refinitiv_token_budget_stops_token_storms() -> None:
    feed = Rdp(refuse=10_000)
    feed_adapter = rdp_adapter(feed)

    async def go() -> list[str]:
        categories = []
        for _ in range(40):
            try:
                await feed_adapter.fetch(INSTRUMENTS)
            except FeedError as exc:
                categories.append(exc.category)
        await feed_adapter.aclose()
        return categories

    assert asyncio.run(go()) == ["auth"] * 40
    assert len(feed.token_requests) == 30  # TOKEN_BUDGET_PER_MINUTE, well under LSEG's 50


@pytest.mark.parametrize(
    ("body", "category"),
    [
        pytest.param(
            {**RDP_OK, "data": [["EUR/USD", 1.089, None], ["RDSa.L", None, None]]}, "missing data", id="null-field"
        ),
        pytest.param({**RDP_OK, "data": [["EUR/USD", 1.089, None]]}, "missing data", id="missing-symbol"),
        pytest.param(
            {**RDP_OK, "headers": [{"name": "instrument"}, {"name": "mid"}]}, "missing data", id="missing-field"
        ),
        pytest.param(
            {**RDP_OK, "headers": [{"name": "ric"}, {"name": "mid"}, {"name": "last"}]},
            "bad response",
            id="no-instrument-column",
        ),
        pytest.param({"timestamp": "2026-10-27T14:30:00Z"}, "bad response", id="no-table"),
    ],
)
def test_refinitiv_failures(body: Any, category: str) -> None:
    assert failure(rdp_adapter(Rdp(body=body))).category == category


def test_refinitiv_non_2xx_and_bad_token_response() -> None:
    async def down(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        return httpx.Response(503)

    assert failure(adapter("refinitiv", down, client_id="a", client_secret="env:RDP_SECRET")).category == "http status"

    async def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    error = failure(adapter("refinitiv", refused, client_id="a", client_secret="env:RDP_SECRET"))
    assert error.category == "auth"
    assert "s3cr3t" not in error.message


def test_refinitiv_needs_client_credentials() -> None:
    with pytest.raises(FeedConfigError):
        adapter("refinitiv", reply(RDP_OK))


# -- settings and mTLS ---------------------------------------------------------------------


def test_settings_from_the_manifest_spec(tmp_path: Path) -> None:
    spec = MarketDataFeedSpec.model_validate(
        {
            "provider": "bloomberg",
            "url": URL,
            "tls": {"clientCert": "file:certs/c.pem", "clientKey": "file:keys/k.pem", "ca": "file:certs/ca.pem"},
            "credentials": {"token": "env:FEED_TOKEN"},
            "timeoutMs": 150,
            "breaker": {"failureThreshold": 5, "resetAfter": "30s"},
            "instruments": [{"symbol": "EUR/USD", "field": "mid", "as": "eurusd_spot"}],
            "appliesTo": {"queues": ["fx-spot"]},
        }
    )
    got = FeedSettings.from_spec("fx", spec, base_dir=tmp_path)
    assert got.timeout_s == 0.15
    assert got.coalesce_window_s == 0.010  # the manifest default
    assert got.breaker_threshold == 5
    assert got.breaker_reset_s == 30.0
    assert got.instruments == (InstrumentRef("EUR/USD", "mid", "eurusd_spot"),)
    assert got.tls == TlsSettings(tmp_path / "certs/c.pem", f"file:{tmp_path}/keys/k.pem", tmp_path / "certs/ca.pem")
    assert "FEED_TOKEN" not in repr(got)


@pytest.mark.parametrize("as_", ["timestamp_utc", "source_provider"])
def test_instrument_may_not_overwrite_a_snapshot_key(as_: str) -> None:
    with pytest.raises(FeedConfigError):
        FeedSettings("fx", "generic-rest", URL, (InstrumentRef("X", "mid", as_),)).check()


def test_comma_in_a_symbol_is_refused_where_the_query_joins_with_commas() -> None:
    with pytest.raises(FeedConfigError):
        FeedSettings("fx", "refinitiv", URL, (InstrumentRef("A,B", "mid", "ab"),)).check()
    FeedSettings("fx", "bloomberg", URL, (InstrumentRef("A,B", "mid", "ab"),)).check()


def _cert_and_key(tmp_path: Path) -> tuple[Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recon-feed-client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "client.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert_path, pem


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "temp-file"])
def test_env_client_key_is_loaded_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memfd: bool
) -> None:
    cert, pem = _cert_and_key(tmp_path)
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        folder = real_mkdtemp(*args, **kwargs)
        made.append(folder)
        return folder

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    context = tls_context(TlsSettings(cert, "env:KEY"), {"env:KEY": pem}.__getitem__, feed="fx", memfd=memfd)
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert len(made) == (0 if memfd else 1)
    assert all(not Path(folder).exists() for folder in made)


def test_one_line_env_key_with_escaped_newlines_is_accepted(tmp_path: Path) -> None:
    cert, pem = _cert_and_key(tmp_path)
    tls_context(TlsSettings(cert, "env:KEY"), {"env:KEY": pem.replace("\n", "\\n")}.__getitem__, feed="fx")


def test_file_client_key_is_used_in_place_and_a_wrong_key_is_a_config_error(tmp_path: Path) -> None:
    cert, pem = _cert_and_key(tmp_path)
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem)
    tls_context(TlsSettings(cert, f"file:{key_file}"), SECRETS.__getitem__, feed="fx")

    _, other = _cert_and_key(tmp_path / "..")
    with pytest.raises(FeedConfigError) as caught:
        tls_context(TlsSettings(cert, "env:KEY"), {"env:KEY": other}.__getitem__, feed="fx")
    assert "PRIVATE KEY" not in str(caught.value)


def test_client_with_tls_builds_with_the_loaded_context(tmp_path: Path) -> None:
    cert, pem = _cert_and_key(tmp_path)
    feed = build_adapter(
        settings("generic-rest", tls=TlsSettings(cert, "env:KEY")),
        {"env:KEY": pem}.__getitem__,
        transport=httpx.MockTransport(reply(REST_OK)),
    )
    assert fetch(feed)["eurusd_spot"] == 1.089
