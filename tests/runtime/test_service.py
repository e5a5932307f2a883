"""The runtime service in process against the Genesys and market-data sandboxes: recent calls
on covered queues are stamped once, and the Prometheus metrics say what happened (scraped over
HTTP on loopback)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.regions import Endpoints
from reconciler.runtime.evidence import EvidenceLog
from reconciler.runtime.service import FeedPlan, RuntimeService
from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef
from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.marketdata import GENERIC, TEST_TOKEN, MarketDataSandbox


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[tuple[GenesysSandbox, MarketDataSandbox]]:
    org, feed = GenesysSandbox(tmp_path / "org.json"), MarketDataSandbox(seed=1)
    org.start()
    feed.start()
    try:
        yield org, feed
    finally:
        feed.stop()
        org.stop()


def test_recent_calls_are_stamped_once_and_counted(
    estate: tuple[GenesysSandbox, MarketDataSandbox], tmp_path: Path
) -> None:
    org, feed = estate
    token = httpx.post(
        f"{org.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(org.client_id, org.client_secret),
    ).json()["access_token"]
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    httpx.post(
        f"{org.base_url}/api/v2/sandbox/conversations",
        json={"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"], "startTime": start, "count": 4},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    settings = FeedSettings(
        "gas-hub-prices",
        "generic-rest",
        feed.base_url + GENERIC,
        (InstrumentRef("Natural_Gas_Hub", "price_usd", "commodity"),),
        token=TEST_TOKEN,
        breaker_threshold=5,
        breaker_reset_s=30.0,
    )

    async def scenario() -> tuple[int, int, str]:
        client = GenesysClient(Endpoints(org.base_url, org.base_url), org.client_id, org.client_secret)
        evidence = EvidenceLog(tmp_path / "runtime.db")
        service = RuntimeService(
            client, [FeedPlan(settings, ("energy-desk-gas", "fx-spot"))], evidence, str, lambda k, d: None
        )
        try:
            async with service:
                url = service.metrics.serve(0)
                first = await service.stamp_recent(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
                second = await service.stamp_recent(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
                async with httpx.AsyncClient() as http:
                    scraped = (await http.get(url)).text
                return len(first), len(second), scraped
        finally:
            service.metrics.stop()
            evidence.close()
            await client.aclose()

    first, second, scraped = asyncio.run(scenario())
    assert (first, second) == (4, 0), "each call once"
    assert "recon_runtime_attached_total 4.0" in scraped and "recon_runtime_fallbacks_total 0.0" in scraped
    assert 'recon_runtime_feed_fetches_total{feed="gas-hub-prices"}' in scraped
    assert 'recon_runtime_breaker_open{feed="gas-hub-prices"} 0.0' in scraped
    assert "recon_runtime_injection_lag_seconds_count 4.0" in scraped
