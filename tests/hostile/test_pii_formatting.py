"""Issue 17, class 9: personal data detection cannot be sidestepped by formatting, and a call
whose every instrument was dropped says so in its status.

Each sidestep below was attached to a call (or would have been) by the detection before this
class: separators other than one space or dash, fullwidth and other-script digits, look-alike
letters, invisible characters, encodings, items split across fields. The false-positive table
is market data that must keep flowing. End to end: the injector against the Genesys sandbox
(every sidestep is withheld from the participant data and the evidence), and `recon runtime`
through the CLI on a feed whose only instrument reads a CRM note (status instruments_dropped,
exit 2, found by `recon search status=instruments_dropped`).

PII values are published test numbers (card networks' test PANs, the IBAN registry's
examples, SSA's and HMRC's documented formats), never real data.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import EXAMPLES, Recon
from test_cli_genesys import Org, ok

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.regions import Endpoints
from reconciler.runtime.evidence import EvidenceLog, verify
from reconciler.runtime.snapshot.feedconfig import FeedSettings, InstrumentRef
from reconciler.runtime.snapshot.fetcher import open_fetcher
from reconciler.runtime.snapshot.genesys_attach import GenesysAttacher
from reconciler.runtime.snapshot.guard import guard
from reconciler.runtime.snapshot.injector import CallStart, Feed, SnapshotInjector
from reconciler.runtime.snapshot.pii import find_pii
from reconciler.sandbox import GenesysSandbox

CARD = "4111111111111111"

SIDESTEPS = [
    pytest.param("GB82.WEST.1234.5698.7654.32", "iban", id="iban-dotted"),
    pytest.param("GB82/WEST/1234/5698/7654/32", "iban", id="iban-slashed"),
    pytest.param("GB82_WEST_1234_5698_7654_32", "iban", id="iban-underscored"),
    pytest.param("GB82 - WEST - 1234 - 5698 - 7654 - 32", "iban", id="iban-spaced-dashes"),
    pytest.param("g b 8 2 w e s t 1 2 3 4 5 6 9 8 7 6 5 4 3 2", "iban", id="iban-lower-case-spaced-out"),
    pytest.param("G\u041282WEST12345698765432", "iban", id="iban-cyrillic-ve-in-country-code"),
    pytest.param("GB82 W\u0415ST 1234 5698 7654 32", "iban", id="iban-cyrillic-ie-in-bank-code"),
    pytest.param("ＧＢ８２ＷＥＳＴ１２３４５６９８７６５４３２", "iban", id="iban-fullwidth"),
    pytest.param("GB82\u00a0WEST\u20091234\u202f5698\u30007654 32", "iban", id="iban-unicode-spaces"),
    pytest.param("4111.1111.1111.1111", "card", id="card-dotted"),
    pytest.param("4111/1111/1111/1111", "card", id="card-slashed"),
    pytest.param("4111_1111_1111_1111", "card", id="card-underscored"),
    pytest.param("4111:1111:1111:1111", "card", id="card-colons"),
    pytest.param("4111\u20131111\u20141111\u22121111", "card", id="card-en-em-dash-minus"),
    pytest.param("４１１１ １１１１ １１１１ １１１１", "card", id="card-fullwidth-digits"),
    pytest.param("٤١١١١١١١١١١١١١١١", "card", id="card-arabic-indic-digits"),
    pytest.param("4111\u200b1111\u200b1111\u200b1111", "card", id="card-zero-width-spaces"),
    pytest.param("4111\u00ad1111\u20601111\ufeff1111", "card", id="card-soft-hyphen-word-joiner-bom"),
    pytest.param("4111\x001111\x001111\x001111", "card", id="card-nul-bytes"),
    pytest.param("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "card", id="card-spaced-out-digits"),
    pytest.param("4,111,111,111,111,111", "card", id="card-as-thousands"),
    pytest.param("4111 1111 1111 1111 exp 12/26", "card", id="card-with-expiry"),
    pytest.param("4111 1111 1111 1111 12/26", "card", id="card-expiry-joined-by-space"),
    pytest.param("7 4111 1111 1111 1111", "card", id="card-after-another-number"),
    pytest.param("4111111111111111.00", "card", id="card-with-a-fraction"),
    pytest.param(base64.b64encode(b"4111 1111 1111 1111").decode(), "card", id="card-base64"),
    pytest.param(base64.b64encode(base64.b64encode(CARD.encode())).decode(), "card", id="card-base64-twice"),
    pytest.param("&#52;&#49;&#49;&#49; 1111 1111 1111", "card", id="card-html-references"),
    pytest.param(quote("4111 1111 1111 1111"), "card", id="card-percent-encoded"),
    pytest.param("536.90.4399", "us_ssn", id="ssn-dotted"),
    pytest.param("536 90 4399", "us_ssn", id="ssn-spaced"),
    pytest.param("536/90/4399", "us_ssn", id="ssn-slashed"),
    pytest.param("５３６-９０-４３９９", "us_ssn", id="ssn-fullwidth"),
    pytest.param("ssn#536-904-399", "us_ssn", id="ssn-keyword-odd-grouping"),
    pytest.param("AB.12.34.56.C", "uk_nino", id="nino-dotted"),
    pytest.param("AB-123456-C", "uk_nino", id="nino-dashed"),
    pytest.param("\u0410\u0412123456\u0421", "uk_nino", id="nino-cyrillic-letters"),
    pytest.param("ａｂ１２３４５６ｃ", "uk_nino", id="nino-fullwidth-lower"),
    pytest.param("jane@exämple.de", "email", id="email-idn-domain"),
    pytest.param("jane.doe＠example.com", "email", id="email-fullwidth-at"),
    pytest.param("jane.doe﹫example.com", "email", id="email-small-at"),
    pytest.param("jane.doe@exa\u200bmple.com", "email", id="email-zero-width-in-domain"),
    pytest.param("jane.doe @ example.com", "email", id="email-spaced-at"),
    pytest.param("jane.doe [at] example [dot] com", "email", id="email-bracketed-at-dot"),
    pytest.param("jane.doe(at)example.com", "email", id="email-parenthesised-at"),
    pytest.param("jane dot doe at example dot com", "email", id="email-words"),
    pytest.param("\u0458ane@ex\u0430mple.com", "email", id="email-cyrillic-letters"),
    pytest.param("jane@пример.рф", "email", id="email-cyrillic-domain"),
    pytest.param("JANE.DOE@EXAMPLE.COM", "email", id="email-upper-case"),
    pytest.param(quote("jane.doe@example.com"), "email", id="email-percent-encoded"),
    pytest.param(base64.urlsafe_b64encode(b"jane.doe@example.com").decode(), "email", id="email-base64-urlsafe"),
    pytest.param("jane&#64;example.com", "email", id="email-html-at"),
    pytest.param("+44 20 7946 0958", "phone", id="phone-uk-international"),
    pytest.param("+1 (212) 555-0123", "phone", id="phone-us-international"),
    pytest.param("＋４４ ２０ ７９４６ ０９５８", "phone", id="phone-fullwidth"),
    pytest.param("+44.20.7946.0958", "phone", id="phone-dotted"),
]


@pytest.mark.parametrize(("text", "pii_class"), SIDESTEPS)
def test_a_formatted_item_is_still_found(text: str, pii_class: str) -> None:
    matches = find_pii(text)
    assert pii_class in [m.pii_class for m in matches], matches
    for match in matches:
        assert 0 <= match.start < match.end <= len(text), "spans are of the value as given"


MARKET_DATA = [
    pytest.param("2.45", id="price"),
    pytest.param("-0.0025", id="negative-price"),
    pytest.param("4521.25", id="index-level"),
    pytest.param("1234567890123.45", id="large-decimal-no-card-prefix"),
    pytest.param("1.0891234567890123", id="fx-rate-many-decimals"),
    pytest.param("1698417000000", id="epoch-ms"),
    pytest.param("1698417000000.123", id="epoch-ms-fraction"),
    pytest.param("1698417000000123", id="epoch-us"),
    pytest.param("2023-10-27T14:30:00.123456+00:00", id="iso-timestamp"),
    pytest.param("2023-10-27 14:30:00.123456", id="space-separated-timestamp"),
    pytest.param("27.10.2023 14:30:00", id="european-date-time"),
    pytest.param("23/10/2025 23:59:59.999", id="date-time-day-in-mastercard-range"),
    pytest.param("10/27/2023 14:30", id="us-date-time"),
    pytest.param("2.45 2.47 2.50 2.52 2.55 2.60 2.61 2.65", id="a-list-of-prices"),
    pytest.param("bid 2.45 / ask 2.46 / last 2.455", id="bid-ask-last"),
    pytest.param("EUR/USD", id="currency-pair"),
    pytest.param("RDSa.L", id="ric"),
    pytest.param("ES.Z25", id="future"),
    pytest.param("NG=F", id="yahoo-code"),
    pytest.param("CLZ5 Comdty", id="bloomberg-ticker"),
    pytest.param("US0378331005", id="isin-with-luhn-check-digit"),
    pytest.param("GB0002634946", id="isin-gb"),
    pytest.param("BBG000BLNNH6", id="figi"),
    pytest.param("037833100", id="cusip"),
    pytest.param("123e4567-e89b-12d3-a456-426614174000", id="uuid"),
    pytest.param("Bloomberg_API_V3", id="provider-name-base64-alphabet"),
    pytest.param("TTF_FRONT_MONTH_2025_12", id="long-code-with-digits"),
    pytest.param("Natural Gas (Henry Hub) NYMEX", id="description"),
    pytest.param("delivery at NBP.gas", id="at-in-prose-is-not-an-address"),
    pytest.param("CL@NYMEX", id="venue-code-with-at"),
    pytest.param("+2.45", id="signed-price-change"),
    pytest.param("+1250000", id="signed-volume-change"),
    pytest.param("%+2.5 / %-1.0", id="percent-signs"),
    pytest.param("AT&T", id="ampersand-ticker"),
    pytest.param("vol 123456789", id="nine-digit-volume"),
    pytest.param("123456789012", id="12-digit-volume"),
]


@pytest.mark.parametrize("text", MARKET_DATA)
def test_market_data_is_not_flagged(text: str) -> None:
    assert find_pii(text) == []


INSTRUMENTS = [SimpleNamespace(as_=key) for key in ("part_a", "part_b", "price", "note")]
BASE = {"timestamp_utc": "2026-10-27T14:30:00Z", "source_provider": "feed", "price": 2.45}


@pytest.mark.parametrize(
    ("fields", "dropped"),
    [
        pytest.param({"part_a": "GB82 WEST", "part_b": "1234 5698 7654 32"}, {"part_a", "part_b"}, id="iban-split"),
        pytest.param({"part_a": "4111 1111", "part_b": "1111 1111"}, {"part_a", "part_b"}, id="card-split"),
        pytest.param({"part_a": "jane.doe", "part_b": "@example.com"}, {"part_a", "part_b"}, id="email-split"),
        pytest.param({"part_a": "EUR/USD", "part_b": "RDSa.L"}, set(), id="two-codes-stay"),
        pytest.param({"part_a": "2.45", "part_b": "2.47"}, set(), id="two-price-strings-stay"),
    ],
)
def test_an_item_split_across_fields_drops_every_part(fields: dict[str, str], dropped: set[str]) -> None:
    result = guard({**BASE, **fields}, INSTRUMENTS)
    assert {d.key for d in result.dropped} == dropped
    assert set(result.clean) == set(BASE) | (set(fields) - dropped)
    for part in fields.values():
        if dropped:
            assert all(part not in d.reason for d in result.dropped)


@pytest.mark.parametrize(
    "value",
    [pytest.param(4111111111111111.0, id="card-as-json-float"), pytest.param(-4111111111111111, id="negative-int")],
)
def test_a_card_as_a_number_is_dropped(value: float) -> None:
    result = guard({**BASE, "price": value}, INSTRUMENTS)
    assert "price" not in result.clean and result.pii_count == {"card": 1}


def test_every_instrument_dropped_is_counted_as_none_kept() -> None:
    result = guard({**BASE, "price": "4111.1111.1111.1111"}, INSTRUMENTS)
    assert result.valid and result.instrument_count == 0
    assert guard(BASE, INSTRUMENTS).instrument_count == 1


def test_the_scan_of_fields_dropped_anyway_is_bounded() -> None:
    junk = {f"junk{i}": "4 1 1 1 " * 60 for i in range(2_000)}
    result = guard({**BASE, **junk}, INSTRUMENTS)
    assert result.valid and result.clean == BASE
    assert len(result.dropped) == 2_000


# ---------------------------------------------------------------- the injector, end to end


@pytest.fixture
def org(tmp_path: Path) -> Any:
    sandbox = GenesysSandbox(tmp_path / "org.json")
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def _login(base_url: str) -> httpx.Client:
    token = httpx.post(
        f"{base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("recon-sandbox", "sandbox-secret")
    ).json()["access_token"]
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


def _stamp(org: GenesysSandbox, db: Path, values: dict[str, Any]) -> tuple[Any, dict[str, str], list[Any]]:
    """Start a call, stamp it from a feed answering `values` for two instruments; (injection,
    the call's participant attributes, alerts)."""
    http = _login(org.base_url)
    (conversation,) = http.post(
        "/api/v2/sandbox/conversations", json={"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"]}
    ).json()["conversations"]
    participants = http.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"]
    call = CallStart(conversation, participants[1]["queueId"], participants[0]["id"], dt.datetime.now(dt.UTC))
    body = {"timestamp": "2026-10-27T14:30:00Z", "data": {"NG": values}}
    instruments = tuple(InstrumentRef("NG", name, name) for name in values)
    alerts: list[Any] = []

    async def scenario() -> Any:
        settings = FeedSettings("gas", "generic-rest", "https://feed.example/v1", instruments, 5, 30.0)
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
        fetcher = open_fetcher(settings, lambda ref: ref, transport=transport)
        client = GenesysClient(Endpoints(org.base_url, org.base_url), org.client_id, org.client_secret)
        evidence = EvidenceLog(db)
        injector = SnapshotInjector(
            {call.queue_id: [Feed(settings, fetcher)]}, GenesysAttacher(client), evidence, lambda *a: alerts.append(a)
        )
        try:
            return await injector.on_call_start(call)
        finally:
            evidence.close()
            await fetcher.aclose()
            await client.aclose()

    injection = asyncio.run(scenario())
    attributes = http.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"][0]["attributes"]
    http.close()
    return injection, attributes, alerts


@pytest.mark.parametrize(("text", "pii_class"), SIDESTEPS[::6])
def test_a_sidestep_never_reaches_the_call_or_the_evidence(
    org: GenesysSandbox, tmp_path: Path, text: str, pii_class: str
) -> None:
    db = tmp_path / "runtime.db"
    injection, attributes, alerts = _stamp(org, db, {"price": 2.45, "note": text})
    assert injection.status == "attached", "the price is kept"
    snapshot = json.loads(attributes["market_snapshot"])
    assert snapshot["price"] == 2.45 and "note" not in snapshot
    assert snapshot["instruments"] == {"price": "NG"}, "only kept values are named"
    with EvidenceLog(db) as log:
        (record,) = log.records()
    stored = db.read_bytes()
    assert text.encode() not in stored and text not in json.dumps(alerts) and text not in json.dumps(attributes)
    assert record.status == "attached" and verify(db).intact
    assert (
        "pii_rejected",
        {"conversationId": injection.conversation_id, "feed": "gas", "classes": {pii_class: 1}},
    ) in [(kind, dict(detail)) for kind, detail in alerts]


def test_a_call_whose_every_instrument_was_dropped_says_so(org: GenesysSandbox, tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"
    injection, attributes, alerts = _stamp(org, db, {"note": "jane.doe＠example.com", "acct": "4111/1111/1111/1111"})
    assert injection.status == "instruments_dropped"
    assert attributes["market_snapshot_status"] == "instruments_dropped"
    snapshot = json.loads(attributes["market_snapshot"])
    assert snapshot == {
        "timestamp_utc": "2026-10-27T14:30:00.000Z",
        "source_provider": "generic-rest",
        "instruments": {},
    }
    kinds = [kind for kind, _ in alerts]
    assert kinds == ["pii_rejected", "instruments_dropped"]
    assert "every instrument value was dropped" in alerts[1][1]["reason"] and "4111" not in alerts[1][1]["reason"]
    with EvidenceLog(db) as log:
        (record,) = log.records()
    assert record.status == "instruments_dropped" and verify(db).intact


# ---------------------------------------------------------------- recon runtime, through the CLI

CRM_FEED = """apiVersion: recon/v1
kind: MarketDataFeed
metadata:
  name: gas-hub-prices
spec:
  provider: generic-rest
  url: https://marketdata.internal.example/v1/snapshot
  timeoutMs: 200
  instruments:
    - {symbol: Natural_Gas_Hub, field: traderNote, as: commodity}
  appliesTo:
    queues: [energy-desk-gas]
"""


def test_recon_runtime_reports_a_call_with_no_instrument_kept(recon: Recon, tmp_path: Path) -> None:
    """A feed mapping whose only instrument reads a CRM note (the sandbox puts PII in it):
    the call is instruments_dropped, not attached; exit 2; `recon search` finds it by status."""
    desk = tmp_path / "desk"
    shutil.copytree(EXAMPLES / "energy-desk-eu", desk)
    (desk / "market-data.yaml").write_text(CRM_FEED)
    ok(recon("sandbox", "up", cwd=desk))
    services = json.loads((desk / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]
    httpx.put(services["marketdata"]["knobsUrl"], json={"piiRate": 1.0}).raise_for_status()
    org = Org(desk)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    (conversation,) = org.post(
        "/api/v2/sandbox/conversations",
        {"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"], "startTime": start},
    )["conversations"]

    result = recon("runtime", "--once", "--since", "10m", cwd=desk)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "0 attached, 0 data_fetch_failed, 1 instruments_dropped" in result.stdout
    assert '"alert": "instruments_dropped"' in result.stderr
    customer = org.get(f"/api/v2/conversations/calls/{conversation}")["participants"][0]
    assert customer["attributes"]["market_snapshot_status"] == "instruments_dropped"
    assert json.loads(customer["attributes"]["market_snapshot"])["instruments"] == {}

    found = json.loads(ok(recon("search", "status=instruments_dropped", "--format", "json", cwd=desk)).stdout)
    assert [call["conversationId"] for call in found["calls"]] == [conversation]
    none = ok(recon("search", "market_snapshot.commodity=Natural_Gas_Hub", cwd=desk)).stdout
    assert "0 call(s) match" in none, "a withheld instrument is not found by its symbol"
    assert "intact" in ok(recon("evidence", "verify", cwd=desk)).stdout
