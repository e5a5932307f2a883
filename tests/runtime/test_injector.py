"""The call-start hook end to end against the Genesys sandbox (in process, real HTTP on
loopback): a snapshot is fetched, guarded, attached to the call as participant data and
recorded in the evidence log; a failing feed attaches `null` with data_fetch_failed and
alerts; PII is dropped, counted and alerted; a queue no feed covers is left alone."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.regions import Endpoints
from reconciler.runtime.evidence import EvidenceLog, verify
from reconciler.runtime.evidence_chain import canonical_json, snapshot_digest
from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef
from reconciler.runtime.snapshot.fetcher import open_fetcher
from reconciler.runtime.snapshot.genesys_attach import GenesysAttacher
from reconciler.runtime.snapshot.injector import CallStart, Feed, SnapshotInjector
from reconciler.sandbox import GenesysSandbox

INSTRUMENTS = (InstrumentRef("Natural_Gas_Hub", "price_usd", "commodity"), InstrumentRef("EUR/USD", "rate", "fx"))
GOOD = {
    "timestamp": "2026-10-27T14:30:00Z",
    "data": {"Natural_Gas_Hub": {"price_usd": 2.45}, "EUR/USD": {"rate": 1.089}},
}


@pytest.fixture
def org(tmp_path: Path) -> Iterator[GenesysSandbox]:
    sandbox = GenesysSandbox(tmp_path / "org.json")
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def login(base_url: str) -> httpx.Client:
    token = httpx.post(
        f"{base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("recon-sandbox", "sandbox-secret")
    ).json()["access_token"]
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


def feed_answering(status: int, body: Any) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


def start_call(org: GenesysSandbox) -> CallStart:
    http = login(org.base_url)
    (conversation,) = http.post(
        "/api/v2/sandbox/conversations", json={"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"]}
    ).json()["conversations"]
    call = http.get(f"/api/v2/conversations/calls/{conversation}").json()
    http.close()
    customer, acd = call["participants"][0], call["participants"][1]
    return CallStart(conversation, acd["queueId"], customer["id"], dt.datetime.now(dt.UTC))


def run(org: GenesysSandbox, tmp_path: Path, transport: httpx.MockTransport) -> tuple[Any, list[tuple[str, Any]], Path]:
    call = start_call(org)
    alerts: list[tuple[str, Any]] = []
    db = tmp_path / "runtime.db"

    async def scenario() -> Any:
        settings = FeedSettings(
            "gas-hub-prices",
            "generic-rest",
            "https://feed.example/v1/snapshot",
            INSTRUMENTS,
            breaker_threshold=5,
            breaker_reset_s=30.0,
        )
        fetcher = open_fetcher(settings, lambda ref: ref, transport=transport)
        client = GenesysClient(Endpoints(org.base_url, org.base_url), org.client_id, org.client_secret)
        evidence = EvidenceLog(db)
        injector = SnapshotInjector(
            {call.queue_id: [Feed(settings, fetcher)]},
            GenesysAttacher(client),
            evidence,
            lambda kind, detail: alerts.append((kind, detail)),
        )
        try:
            assert await injector.on_call_start(CallStart("x", "no-feed-queue", "p", call.started)) is None
            return await injector.on_call_start(call), injector.counters
        finally:
            evidence.close()
            await fetcher.aclose()
            await client.aclose()

    (injection, counters) = asyncio.run(scenario())
    http = login(org.base_url)
    attributes = http.get(f"/api/v2/conversations/calls/{call.conversation_id}").json()["participants"][0]["attributes"]
    http.close()
    return (injection, counters, attributes), alerts, db


def test_a_snapshot_is_attached_and_evidenced(org: GenesysSandbox, tmp_path: Path) -> None:
    (injection, counters, attributes), alerts, db = run(org, tmp_path, feed_answering(200, GOOD))
    expected = {
        "timestamp_utc": "2026-10-27T14:30:00.000Z",  # the adapter normalises to milliseconds
        "source_provider": "generic-rest",
        "commodity": 2.45,
        "fx": 1.089,
        "instruments": {"commodity": "Natural_Gas_Hub", "fx": "EUR/USD"},  # what each value prices
    }
    assert injection.status == "attached" and injection.attachment["market_snapshot"] == expected
    assert json.loads(attributes["market_snapshot"]) == expected and attributes["market_snapshot_status"] == "attached"
    assert attributes["market_snapshot"] == canonical_json(expected).decode(), "the attached text is the canonical JSON"
    assert alerts == [] and (counters.attached, counters.failed) == (1, 0)
    report = verify(db)
    assert report.intact and report.records == 1
    with EvidenceLog(db) as log:
        (record,) = list(log.records())
    assert record.snapshot_sha256 == snapshot_digest({"market_snapshot": expected, "status": "attached"})
    assert record.recording_id == injection.recording_id and record.status == "attached"
    with sqlite3.connect(db) as raw:
        (document,) = raw.execute("SELECT document FROM documents WHERE seq = 1").fetchone()
    assert document == attributes["market_snapshot"].join(('{"market_snapshot":', ',"status":"attached"}')), (
        "the searchable document is exactly what was digested"
    )


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(503, {"message": "down"}, "gas-hub-prices", id="feed-5xx"),
        pytest.param(200, {"timestamp": "2026-10-27T14:30:00Z", "data": {}}, "gas-hub-prices", id="instrument-missing"),
        pytest.param(200, {"data": GOOD["data"]}, "gas-hub-prices", id="no-timestamp"),
    ],
)  # fmt: skip
def test_a_failed_fetch_attaches_null_and_alerts(
    org: GenesysSandbox, tmp_path: Path, status: int, body: Any, reason: str
) -> None:
    (injection, counters, attributes), alerts, db = run(org, tmp_path, feed_answering(status, body))
    assert injection.status == "data_fetch_failed" and injection.attachment == {
        "market_snapshot": None,
        "status": "data_fetch_failed",
    }
    assert attributes == {"market_snapshot": "null", "market_snapshot_status": "data_fetch_failed"}
    assert [kind for kind, _ in alerts] == ["data_fetch_failed"] and reason in alerts[0][1]["reason"]
    assert counters.failed == 1 and verify(db).intact


def test_pii_is_dropped_counted_and_alerted_never_attached(org: GenesysSandbox, tmp_path: Path) -> None:
    leaky = {
        "timestamp": "2026-10-27T14:30:00Z",
        "data": {"Natural_Gas_Hub": {"price_usd": 2.45}, "EUR/USD": {"rate": "trader jane.doe@acme.example"}},
    }
    (_, counters, attributes), alerts, _ = run(org, tmp_path, feed_answering(200, leaky))
    assert "jane.doe" not in json.dumps(attributes) and "jane.doe" not in json.dumps(alerts)
    assert json.loads(attributes["market_snapshot"])["commodity"] == 2.45 and "fx" not in json.loads(
        attributes["market_snapshot"]
    )
    assert [kind for kind, _ in alerts] == ["pii_rejected"] and alerts[0][1]["classes"] == {"email": 1}
    assert counters.pii_rejections == {"email": 1}
