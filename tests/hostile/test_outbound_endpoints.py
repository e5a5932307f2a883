"""Class 8 (and the transport half of class 1): the one endpoint policy, reconciler.endpoints.

A table of hostile and ordinary URLs through `check` (pure), the DNS half (`resolved_problem`,
`HostGuard`), and the clients that must apply it before they connect: the Genesys client, the
feed adapters, the TradeSense client, the notification intake and alert delivery. Every URL
that is refused here was accepted before (the manifests only checked the scheme, and the
clients checked nothing), except plain-http webhooks, which alerts.py already refused."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from reconciler import endpoints
from reconciler.endpoints import EndpointRefused, HostGuard, check, resolved_problem

ALLOWED = [
    pytest.param("https://api.mypurecloud.ie", "http", "name", id="https-name"),
    pytest.param("https://api.example.com:8443/v2/x?y=1", "http", "name", id="https-port-path-query"),
    pytest.param("http://127.0.0.1:8080/api", "http", "loopback", id="http-loopback-v4"),
    pytest.param("http://127.9.8.7/", "http", "loopback", id="http-loopback-127/8"),
    pytest.param("http://[::1]:9/x", "http", "loopback", id="http-loopback-v6"),
    pytest.param("http://localhost:1234", "http", "loopback", id="http-localhost"),
    pytest.param("http://LOCALHOST./x", "http", "loopback", id="http-localhost-upper-trailing-dot"),
    pytest.param("http://[::ffff:127.0.0.1]/", "http", "loopback", id="http-v4-mapped-loopback"),
    pytest.param("https://10.1.2.3/feed", "http", "private", id="https-rfc1918"),
    pytest.param("https://192.168.0.10/feed", "http", "private", id="https-192.168"),
    pytest.param("https://100.64.0.1/feed", "http", "private", id="https-cgnat"),
    pytest.param("https://[fd12:3456::1]/feed", "http", "private", id="https-ula"),
    pytest.param("https://8.8.8.8/", "http", "public", id="https-public-ip"),
    pytest.param("wss://tradesense-a.floor.example:8443/wba", "ws", "name", id="wss-name"),
    pytest.param("ws://127.0.0.1:9000/wba", "ws", "loopback", id="ws-loopback"),
]


@pytest.mark.parametrize(("url", "family", "category"), ALLOWED)
def test_allowed_urls(url: str, family: endpoints.Family, category: str) -> None:
    assert check(url, family).category == category


REFUSED = [
    pytest.param("http://api.example.com/", "http", "cleartext", id="plain-http-remote-name"),
    pytest.param("http://10.0.0.1/", "http", "cleartext", id="plain-http-private"),
    pytest.param("http://127.0.0.1.nip.io/", "http", "cleartext", id="plain-http-name-that-looks-loopback"),
    pytest.param("http://x.localhost/", "http", "cleartext", id="plain-http-localhost-subdomain"),
    pytest.param("ws://tradesense.example/wba", "ws", "cleartext", id="plain-ws-remote"),
    pytest.param("wss://x.example/", "http", "only https", id="wss-where-https-belongs"),
    pytest.param("https://x.example/", "ws", "only wss", id="https-where-wss-belongs"),
    pytest.param("ftp://x.example/", "http", "only https", id="ftp"),
    pytest.param("file:///etc/passwd", "http", "only https", id="file-scheme"),
    pytest.param("gopher://127.0.0.1:25/", "http", "only https", id="gopher"),
    pytest.param("https:x.example/", "http", "only https", id="no-slashes"),
    pytest.param("x.example/path", "http", "no scheme", id="no-scheme"),
    pytest.param("", "http", "empty", id="empty"),
    pytest.param("https:///path", "http", "no host", id="no-host"),
    pytest.param("https://user:pw@x.example/", "http", "user name", id="userinfo"),
    pytest.param("https://x.example@evil.example/", "http", "user name", id="at-sign-confusion"),
    pytest.param("https://good.example\\@evil.example/", "http", "backslash", id="backslash"),
    pytest.param("https://x.example/a b", "http", "whitespace", id="space"),
    pytest.param("https://x.example/\n", "http", "whitespace", id="trailing-newline"),
    pytest.param("https://x.exa\tmple/", "http", "whitespace", id="tab-in-host"),
    pytest.param("https://exämple.de/", "http", "ASCII", id="idn-host"),
    pytest.param("https://ｌｏｃａｌｈｏｓｔ/", "http", "ASCII", id="fullwidth-localhost"),
    pytest.param("https://%31%32%37.0.0.1/", "http", "valid name", id="percent-encoded-host"),
    pytest.param("https://-bad.example/", "http", "valid name", id="label-starts-with-hyphen"),
    pytest.param("https://x.example:0/", "http", "port 0", id="port-zero"),
    pytest.param("https://x.example:99999/", "http", "port", id="port-out-of-range"),
    pytest.param("https://x.example:http/", "http", "port", id="port-not-a-number"),
    pytest.param("https://169.254.169.254/latest/meta-data/", "http", "metadata", id="aws-metadata"),
    pytest.param("http://169.254.169.254/", "http", "metadata", id="aws-metadata-plain"),
    pytest.param("https://169.254.170.2/v2/credentials", "http", "metadata", id="ecs-credentials"),
    pytest.param("https://100.100.100.200/latest/meta-data", "http", "metadata", id="alibaba-metadata"),
    pytest.param("https://[fd00:ec2::254]/", "http", "metadata", id="aws-metadata-v6"),
    pytest.param("https://metadata.google.internal/computeMetadata/v1/", "http", "metadata", id="gcp-metadata-name"),
    pytest.param("https://METADATA.GOOGLE.INTERNAL./", "http", "metadata", id="gcp-metadata-upper-dot"),
    pytest.param("https://instance-data/", "http", "metadata", id="instance-data"),
    pytest.param("https://[::ffff:169.254.169.254]/", "http", "metadata", id="v4-mapped-metadata"),
    pytest.param("https://[::ffff:a9fe:a9fe]/", "http", "metadata", id="v4-mapped-hex-metadata"),
    pytest.param("https://[64:ff9b::a9fe:a9fe]/", "http", "metadata", id="nat64-metadata"),
    pytest.param("https://[2002:a9fe:a9fe::1]/", "http", "metadata", id="6to4-metadata"),
    pytest.param("https://[::169.254.169.254]/", "http", "metadata", id="v4-compatible-metadata"),
    pytest.param("http://2852039166/", "http", "dotted-quad", id="decimal-metadata"),
    pytest.param("http://0xa9fea9fe/", "http", "dotted-quad", id="hex-metadata"),
    pytest.param("http://0251.0376.0251.0376/", "http", "dotted-quad", id="octal-metadata"),
    pytest.param("http://0xa9.0xfe.0xa9.0xfe/", "http", "dotted-quad", id="dotted-hex-metadata"),
    pytest.param("http://169.254.43518/", "http", "dotted-quad", id="short-form-metadata"),
    pytest.param("http://2130706433/", "http", "dotted-quad", id="decimal-loopback"),
    pytest.param("http://127.1/", "http", "dotted-quad", id="short-loopback"),
    pytest.param("http://017700000001/", "http", "dotted-quad", id="octal-loopback"),
    pytest.param("https://1.2.3.4.5/", "http", "dotted-quad", id="five-numbers"),
    pytest.param("https://169.254.10.1/", "http", "link-local", id="link-local-v4"),
    pytest.param("https://[fe80::1]/", "http", "link-local", id="link-local-v6"),
    pytest.param("https://[fe80::1%25eth0]/", "http", "zone id", id="link-local-zone"),
    pytest.param("https://0.0.0.0/", "http", "unspecified", id="unspecified-v4"),
    pytest.param("http://0.0.0.0:8080/", "http", "unspecified", id="unspecified-v4-plain"),
    pytest.param("https://0.1.2.3/", "http", "unspecified", id="this-network"),
    pytest.param("https://[::]/", "http", "unspecified", id="unspecified-v6"),
    pytest.param("https://[::ffff:0.0.0.0]/", "http", "unspecified", id="v4-mapped-unspecified"),
    pytest.param("https://224.0.0.1/", "http", "multicast", id="multicast-v4"),
    pytest.param("https://[ff02::1]/", "http", "multicast", id="multicast-v6"),
    pytest.param("https://255.255.255.255/", "http", "broadcast", id="broadcast"),
    pytest.param("https://240.0.0.1/", "http", "reserved", id="reserved"),
    pytest.param("https://[::1/", "http", "not a valid URL", id="unclosed-bracket"),
    pytest.param("https://[not-an-ip]/", "http", "not a valid URL", id="bracket-not-ipv6"),
]


@pytest.mark.parametrize(("url", "family", "why"), REFUSED)
def test_refused_urls(url: str, family: endpoints.Family, why: str) -> None:
    with pytest.raises(EndpointRefused) as refused:
        check(url, family, what="the URL")
    assert why in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://user:hunter2-secret@x.example/", id="password"),
        pytest.param("http://x.example/hook/hunter2-secret", id="path"),
        pytest.param("http://x.example/?token=hunter2-secret", id="query"),
        pytest.param("https://169.254.169.254/?token=hunter2-secret", id="metadata-query"),
    ],
)
def test_a_refusal_never_repeats_user_info_path_or_query(url: str) -> None:
    with pytest.raises(EndpointRefused) as refused:
        check(url)
    assert "hunter2-secret" not in str(refused.value)


def test_link_local_only_with_the_opt_in_and_metadata_never() -> None:
    assert check("https://169.254.10.1/", allow_link_local=True).category == "link-local"
    assert check("https://[fe80::1]/", allow_link_local=True).category == "link-local"
    with pytest.raises(EndpointRefused, match="metadata"):
        check("https://169.254.169.254/", allow_link_local=True)
    with pytest.raises(EndpointRefused, match="cleartext"):
        check("http://169.254.10.1/", allow_link_local=True)


@pytest.mark.parametrize(
    ("answers", "why"),
    [
        pytest.param(["93.184.216.34"], None, id="public"),
        pytest.param(["10.0.0.5"], None, id="private"),
        pytest.param(["169.254.169.254"], "metadata", id="metadata"),
        pytest.param(["93.184.216.34", "169.254.169.254"], "metadata", id="one-of-several"),
        pytest.param(["::ffff:169.254.169.254"], "metadata", id="mapped-metadata"),
        pytest.param(["0.0.0.0"], "unspecified", id="unspecified"),
        pytest.param(["169.254.1.1"], "link-local", id="link-local"),
        pytest.param(["fe80::1%eth0"], "link-local", id="link-local-with-zone"),
    ],
)
def test_dns_answers(answers: list[str], why: str | None) -> None:
    problem = resolved_problem(answers)
    assert (problem is None) if why is None else (problem is not None and why in problem)


def _resolving_to(monkeypatch: pytest.MonkeyPatch, address: str) -> list[str]:
    asked: list[str] = []

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_host_guard_refuses_a_name_that_resolves_to_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _resolving_to(monkeypatch, "169.254.169.254")
    guard = HostGuard()
    with pytest.raises(EndpointRefused, match=r"resolves to 169\.254\.169\.254"):
        asyncio.run(guard.ensure(check("https://rebind.example/")))
    assert asked == ["rebind.example"]


def test_host_guard_caches_a_good_answer_and_skips_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _resolving_to(monkeypatch, "93.184.216.34")
    guard = HostGuard()

    async def twice() -> None:
        for url in ("https://ok.example/", "https://ok.example/", "https://10.0.0.1/", "http://localhost/"):
            await guard.ensure(check(url))

    asyncio.run(twice())
    assert asked == ["ok.example"]


# --- the clients apply it before they send -------------------------------------------------


def _refusing_transport(sent: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("api", "login"),
    [
        pytest.param("http://api.example", "http://api.example", id="plain-http-remote"),
        pytest.param("https://169.254.169.254", "https://169.254.169.254", id="metadata"),
        pytest.param("https://api.example", "http://login.example", id="plain-http-login-only"),
        pytest.param("https://[::ffff:169.254.169.254]", "https://login.example", id="mapped-metadata-api"),
        pytest.param("https://169.254.3.4", "https://169.254.3.4", id="link-local-without-opt-in"),
    ],
)
def test_genesys_client_refuses_before_any_request(api: str, login: str) -> None:
    from reconciler.providers.genesys.client import GenesysClient  # noqa: PLC0415
    from reconciler.providers.genesys.errors import GenesysError  # noqa: PLC0415
    from reconciler.providers.genesys.regions import Endpoints  # noqa: PLC0415

    sent: list[httpx.Request] = []
    with pytest.raises(GenesysError, match="refusing"):
        GenesysClient(Endpoints(login, api), "id", "secret-value", transport=_refusing_transport(sent))
    assert sent == []


def test_genesys_link_local_opt_in_reaches_the_client(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli.targets import genesys_client  # noqa: PLC0415
    from reconciler.manifest.project import Project  # noqa: PLC0415

    def project(opt_in: bool) -> Project:
        genesys = {"region": "eu-west-1", "clientId": "id", "clientSecret": "env:LL_SECRET"}
        genesys |= {"apiUrl": "https://169.254.3.4", "allowLinkLocal": opt_in}
        return Project.model_validate({"target": "t", "targets": {"t": {"genesys": genesys}}})

    monkeypatch.setenv("LL_SECRET", "link-local-secret")
    client, _ = genesys_client(project(True), tmp_path)
    asyncio.run(client.aclose())
    with pytest.raises(ValueError, match="link-local"):
        project(False)


def test_genesys_client_refuses_a_name_resolving_to_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.providers.genesys.client import GenesysClient  # noqa: PLC0415
    from reconciler.providers.genesys.errors import GenesysError  # noqa: PLC0415
    from reconciler.providers.genesys.regions import Endpoints  # noqa: PLC0415

    _resolving_to(monkeypatch, "169.254.169.254")
    connects: list[Any] = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: connects.append(address))

    async def plan() -> None:
        client = GenesysClient(Endpoints("https://login.rebind.example", "https://api.rebind.example"), "id", "s")
        async with client:
            await client.get("/api/v2/routing/queues")

    with pytest.raises(GenesysError, match=r"resolves to 169\.254\.169\.254"):
        asyncio.run(plan())
    assert connects == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://feed.example/v1", id="plain-http-remote"),
        pytest.param("https://169.254.169.254/latest", id="metadata"),
        pytest.param("https://0xa9fea9fe/latest", id="hex-metadata"),
        pytest.param("https://169.254.7.7/v1", id="link-local-without-opt-in"),
    ],
)
def test_feed_adapter_refuses_before_any_request(url: str) -> None:
    from reconciler.runtime.snapshot.feedconfig import FeedConfigError, FeedSettings, InstrumentRef  # noqa: PLC0415
    from reconciler.runtime.snapshot.feeds import build_adapter  # noqa: PLC0415

    sent: list[httpx.Request] = []
    settings = FeedSettings("fx", "generic-rest", url, (InstrumentRef("EUR/USD", "mid", "eurusd"),), token="env:T")
    with pytest.raises(FeedConfigError, match="refusing"):
        build_adapter(settings, lambda ref: "feed-token-value", transport=_refusing_transport(sent))
    assert sent == []


def test_feed_link_local_with_the_opt_in_is_used() -> None:
    from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef  # noqa: PLC0415
    from reconciler.runtime.snapshot.feeds import build_adapter  # noqa: PLC0415

    sent: list[httpx.Request] = []
    settings = FeedSettings(
        "fx",
        "generic-rest",
        "https://169.254.7.7/v1",
        (InstrumentRef("EUR/USD", "mid", "eurusd"),),
        allow_link_local=True,
    )
    adapter = build_adapter(settings, lambda ref: "", transport=_refusing_transport(sent))
    asyncio.run(adapter.aclose())


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ws://tradesense.example:9000/wba", id="plain-ws-remote"),
        pytest.param("wss://169.254.169.254/wba", id="metadata"),
        pytest.param("wss://user:pw@tradesense.example/wba", id="userinfo"),
    ],
)
def test_tradesense_client_refuses_before_connecting(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.runtime.verification.wba import WbaClient, WbaEndpointRefused  # noqa: PLC0415

    connects: list[Any] = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: connects.append(address))
    client = WbaClient(url, "ts-token-value", collector="c1")
    with pytest.raises(WbaEndpointRefused, match="refusing to connect"):
        asyncio.run(client.connect())
    assert connects == []


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("ws://streaming.example/channels/x", id="plain-ws-remote"),
        pytest.param("wss://169.254.169.254/channels/x", id="metadata"),
        pytest.param("wss://0.0.0.0/channels/x", id="unspecified"),
    ],
)
def test_notification_socket_from_the_platform_is_checked(uri: str) -> None:
    from reconciler.providers.genesys.errors import GenesysError  # noqa: PLC0415
    from reconciler.runtime.intake import _checked_socket  # noqa: PLC0415

    with pytest.raises(GenesysError, match="refusing to connect"):
        _checked_socket(uri)
    assert _checked_socket("wss://streaming.mypurecloud.ie/channels/x")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://169.254.169.254/hook", id="metadata"),
        pytest.param("https://169.254.3.3/hook", id="link-local"),
        pytest.param("https://[::ffff:169.254.169.254]/hook", id="mapped-metadata"),
        pytest.param("http://2852039166/hook", id="decimal"),
    ],
)
def test_alert_webhook_refused(url: str) -> None:
    from reconciler.errors import UsageError  # noqa: PLC0415
    from reconciler.runtime.alerts import WebhookAlerts  # noqa: PLC0415

    with pytest.raises(UsageError):
        WebhookAlerts(url)


def test_alert_webhook_resolving_to_metadata_is_not_posted(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.runtime.alerts import WebhookAlerts, make_alert  # noqa: PLC0415

    _resolving_to(monkeypatch, "169.254.169.254")
    sent: list[httpx.Request] = []

    async def scenario() -> WebhookAlerts:
        client = httpx.AsyncClient(transport=_refusing_transport(sent))
        async with client, WebhookAlerts("https://hooks.rebind.example/T/B/x", client=client) as sink:
            sink.send(make_alert("capture_gap", "a gap"))
        return sink

    sink = asyncio.run(scenario())
    assert sent == [] and sink.failed == 1
