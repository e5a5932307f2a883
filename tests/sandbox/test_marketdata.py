"""The market-data sandbox over loopback HTTP: the three dialects' wire shapes, their error
answers, refinitiv's token flow, and every knob (failures, garbage, PII, status-0 errors,
latency), with fault draws that are exact for a seed."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sandbox_http import TLS

from reconciler.sandbox.marketdata import (
    BLOOMBERG,
    CLIENT_ID,
    CLIENT_SECRET,
    GENERIC,
    KNOBS,
    REFINITIV,
    STATS,
    TEST_TOKEN,
    TOKEN,
    Knobs,
    MarketDataSandbox,
)
from reconciler.sandbox.marketdata_payloads import INSTRUMENTS, PII_SAMPLES, price

NOW = 1_793_111_400.123  # 2026-10-27T14:30:00.123Z
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BEARER = {"Authorization": f"Bearer {TEST_TOKEN}"}
EXAMPLES = ["Natural_Gas_Hub", "EURUSD", "EUR/USD", "RDSa.L", "NG=F", "TTF", "Brent", "USDJPY"]


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def md(clock: Clock) -> Iterator[MarketDataSandbox]:
    with MarketDataSandbox(seed=7, clock=clock) as server:
        yield server


@pytest.fixture
def http(md: MarketDataSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=md.base_url, verify=TLS, timeout=10) as client:
        yield client


def generic(http: httpx.Client, symbols: list[str], fields: list[str], **headers: str) -> httpx.Response:
    params = {"symbols": ",".join(symbols), "fields": ",".join(fields)}
    return http.get(GENERIC, params=params, headers=headers or BEARER)


def bloomberg(http: httpx.Client, securities: list[str], fields: list[str]) -> httpx.Response:
    return http.post(BLOOMBERG, json={"securities": securities, "fields": fields})


def refinitiv_token(http: httpx.Client, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return http.post(TOKEN, data=form)


def refinitiv(http: httpx.Client, token: str, universe: list[str], fields: list[str]) -> httpx.Response:
    params = {"universe": ",".join(universe), "fields": ",".join(fields)}
    return http.get(REFINITIV, params=params, headers={"Authorization": f"Bearer {token}"})


def knobs(http: httpx.Client, **values: Any) -> dict[str, Any]:
    answer = http.put(KNOBS, json=values)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def strict_json(text: str) -> Any:
    """json.loads that also refuses NaN/Infinity, as a strict client does."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# -- dialects: happy paths ---------------------------------------------------------------------------


def test_generic_snapshot_shape_and_symbols_with_slashes_and_periods(http: httpx.Client) -> None:
    answer = generic(http, ["Natural_Gas_Hub", "EUR/USD", "RDSa.L", "NG=F"], ["price_usd", "exchange_rate"])
    assert answer.status_code == 200, answer.text
    assert "EUR%2FUSD%2CRDSa.L" in str(answer.request.url)  # sent URL-encoded, read back decoded
    body = answer.json()
    assert set(body) == {"timestamp", "data"}
    assert body["timestamp"] == "2026-10-27T14:30:00.123Z"
    assert list(body["data"]) == ["Natural_Gas_Hub", "EUR/USD", "RDSa.L", "NG=F"]
    for symbol, fields in body["data"].items():
        assert fields == {f: price(symbol, f, NOW) for f in ("price_usd", "exchange_rate")}
        assert all(isinstance(v, float) for v in fields.values())


def test_generic_accepts_unencoded_commas_and_slashes(http: httpx.Client) -> None:
    answer = http.get(f"{GENERIC}?symbols=EUR/USD,RDSa.L&fields=exchange_rate", headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "EUR/USD": {"exchange_rate": price("EUR/USD", "exchange_rate", NOW)},
        "RDSa.L": {"exchange_rate": price("RDSa.L", "exchange_rate", NOW)},
    }


def test_bloomberg_refdata_shape(http: httpx.Client) -> None:
    answer = bloomberg(http, ["NG=F", "EUR/USD", "RDSa.L"], ["PX_LAST", "PX_BID"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"status", "timestamp", "data"}
    assert body["status"] == 0
    assert ISO_MS.match(body["timestamp"])
    assert body["data"] == [
        {"security": s, "fieldData": {"PX_LAST": price(s, "PX_LAST", NOW), "PX_BID": price(s, "PX_BID", NOW)}}
        for s in ("NG=F", "EUR/USD", "RDSa.L")
    ]
    assert body["data"][0]["fieldData"]["PX_BID"] < body["data"][0]["fieldData"]["PX_LAST"]


def test_refinitiv_token_then_snapshot_shape(http: httpx.Client, md: MarketDataSandbox) -> None:
    issued = refinitiv_token(http)
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert set(token) == {"access_token", "expires_in", "token_type"}
    assert (token["expires_in"], token["token_type"]) == (300, "Bearer")
    answer = refinitiv(http, token["access_token"], ["TTF", "EUR/USD", "RDSa.L"], ["BID", "ASK"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"timestamp", "headers", "data"}
    assert body["timestamp"] == "2026-10-27T14:30:00.123Z"
    assert body["headers"] == [{"name": "instrument"}, {"name": "BID"}, {"name": "ASK"}]
    assert body["data"] == [[s, price(s, "BID", NOW), price(s, "ASK", NOW)] for s in ("TTF", "EUR/USD", "RDSa.L")]
    assert md.token_requests == 1
    # the path without the trailing slash answers too
    bare = http.get(REFINITIV.rstrip("/"), params={"universe": "TTF", "fields": "BID"}, headers=answer.request.headers)
    assert bare.status_code == 200


# -- dialects: unknown symbols and fields ---------------------------------------------------------


def test_generic_unknown_symbol_and_field_are_absent(http: httpx.Client) -> None:
    answer = generic(http, ["EURUSD", "UNKNOWN_SYMBOL", "Brent"], ["exchange_rate", "UNKNOWN_FIELD"])
    assert answer.status_code == 200
    assert answer.json()["data"] == {
        "EURUSD": {"exchange_rate": price("EURUSD", "exchange_rate", NOW)},
        "Brent": {"exchange_rate": price("Brent", "exchange_rate", NOW)},
    }


def test_bloomberg_unknown_security_and_field_errors(http: httpx.Client) -> None:
    answer = bloomberg(http, ["TTF", "BAD UNKNOWN Equity"], ["PX_LAST", "UNKNOWN_FLD"])
    assert answer.status_code == 200
    assert answer.json()["data"] == [
        {
            "security": "TTF",
            "fieldData": {"PX_LAST": price("TTF", "PX_LAST", NOW)},
            "fieldExceptions": [{"fieldId": "UNKNOWN_FLD", "errorInfo": {"message": "Field not applicable"}}],
        },
        {
            "security": "BAD UNKNOWN Equity",
            "securityError": {"category": "BAD_SEC", "message": "Unknown/Invalid security"},
        },
    ]


def test_refinitiv_unknown_instrument_and_field_are_null(http: httpx.Client) -> None:
    token = refinitiv_token(http).json()["access_token"]
    body = refinitiv(http, token, ["Brent", "UNKNOWN.RIC"], ["TRDPRC_1", "UNKNOWN"]).json()
    assert body["headers"] == [{"name": "instrument"}, {"name": "TRDPRC_1"}, {"name": "UNKNOWN"}]
    assert body["data"] == [["Brent", price("Brent", "TRDPRC_1", NOW), None], ["UNKNOWN.RIC", None, None]]


@pytest.mark.parametrize(
    ("path", "method", "payload"),
    [
        (f"{GENERIC}?fields=price_usd", "GET", None),
        (f"{GENERIC}?symbols=TTF&fields=", "GET", None),
        (BLOOMBERG, "POST", {"securities": [], "fields": ["PX_LAST"]}),
        (BLOOMBERG, "POST", {"securities": ["TTF"], "fields": "PX_LAST"}),
        (BLOOMBERG, "POST", ["TTF"]),
    ],
)
def test_malformed_requests_are_400(http: httpx.Client, path: str, method: str, payload: Any) -> None:
    answer = http.request(method, path, json=payload, headers=BEARER)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


def test_bloomberg_body_must_be_json(http: httpx.Client) -> None:
    answer = http.post(BLOOMBERG, content=b"securities=TTF")
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")


# -- authentication ------------------------------------------------------------------------------


def test_generic_needs_the_test_token(http: httpx.Client) -> None:
    assert generic(http, ["TTF"], ["price_usd"], Accept="*/*").status_code == 401
    refused = generic(http, ["TTF"], ["price_usd"], Authorization="Bearer not-the-token")
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")


def test_bloomberg_token_is_optional_but_checked(http: httpx.Client) -> None:
    ok = http.post(BLOOMBERG, json={"securities": ["TTF"], "fields": ["PX_LAST"]}, headers=BEARER)
    assert ok.status_code == 200
    forged = http.post(
        BLOOMBERG, json={"securities": ["TTF"], "fields": ["PX_LAST"]}, headers={"Authorization": "Bearer forged"}
    )
    assert forged.status_code == 401


def test_refinitiv_token_flow(http: httpx.Client, md: MarketDataSandbox, clock: Clock) -> None:
    no_token = http.get(REFINITIV, params={"universe": "TTF", "fields": "BID"})
    assert (no_token.status_code, no_token.json()["error"]) == (401, "invalid_token")
    assert refinitiv(http, TEST_TOKEN, ["TTF"], ["BID"]).status_code == 401  # the generic token is not refinitiv's
    wrong = refinitiv_token(http, secret="guessed")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    unknown_client = refinitiv_token(http, client_id="someone-else")
    assert unknown_client.status_code == 401
    bad_grant = http.post(TOKEN, data={"grant_type": "password", "client_id": CLIENT_ID})
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "unsupported_grant_type")

    token = refinitiv_token(http).json()["access_token"]
    clock.now += 299
    assert refinitiv(http, token, ["TTF"], ["BID"]).status_code == 200
    clock.now += 1
    expired = refinitiv(http, token, ["TTF"], ["BID"])
    assert (expired.status_code, expired.json()["message"]) == (401, "the access token has expired")

    fresh = refinitiv_token(http).json()["access_token"]
    assert http.post("/sandbox/expire-tokens").json() == {"expired": 1}
    assert refinitiv(http, fresh, ["TTF"], ["BID"]).status_code == 401
    assert md.token_requests == 5  # every token request is counted, refused ones too
    stats = http.get(STATS).json()
    assert (stats["tokenRequests"], stats["tokensIssued"]) == (5, 2)


def test_basic_auth_client_credentials_are_accepted(http: httpx.Client) -> None:
    answer = http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer.status_code == 200, answer.text


# -- prices --------------------------------------------------------------------------------------------


def test_prices_are_deterministic_slowly_varying_and_2_to_6_significant_digits() -> None:
    symbols = [*EXAMPLES, *INSTRUMENTS, "XAU=", "AAPL.O", "CL1 Comdty", "GBP/JPY"]
    for symbol in symbols:
        for field in ("price_usd", "PX_LAST", "BID"):
            now, later = price(symbol, field, NOW), price(symbol, field, NOW + 600)
            assert now == price(symbol, field, NOW + 0.5)  # same minute, same value
            assert isinstance(now, float) and now > 0
            assert abs(later - now) / now < 0.01, (symbol, field, now, later)
            assert float(f"{now:.6g}") == now, (symbol, field, now)  # at most 6 significant digits
    assert price("EUR/USD", "exchange_rate", NOW) == pytest.approx(1.0893, rel=0.01)
    assert isinstance(price("Brent", "volume", NOW), int)


# -- knobs -----------------------------------------------------------------------------------------


def outcome(answer: httpx.Response) -> str:
    return answer.headers.get("X-Sandbox-Injected", "ok")


def test_failure_rate_gives_exact_503s_for_the_seed(http: httpx.Client, md: MarketDataSandbox) -> None:
    knobs(http, failureRate=0.2, seed=42)
    answers = [generic(http, ["TTF"], ["price_usd"]) for _ in range(200)]
    failed = [a for a in answers if a.status_code == 503]
    assert len(failed) == 39  # exact for seed 42: the draws are deterministic (near 0.2 x 200)
    assert all(a.status_code in {200, 503} for a in answers)
    assert failed[0].json()["error"] == "service_unavailable"
    assert failed[0].headers["Retry-After"] == "1"
    assert md.stats()["outcomes"]["failure"] == 39


def test_garbage_answers_200_with_bodies_a_strict_client_rejects(http: httpx.Client) -> None:
    knobs(http, garbageRate=1.0, seed=1)
    kinds: Counter[str] = Counter()
    for _ in range(40):
        answer = generic(http, ["TTF", "EUR/USD"], ["price_usd"])
        assert answer.status_code == 200
        kind = outcome(answer).removeprefix("garbage:")
        kinds[kind] += 1
        try:
            body = strict_json(answer.text)
        except ValueError:
            assert kind in {"truncated", "html", "nan"}
            continue
        assert kind == "wrong-types"
        assert isinstance(body["timestamp"], int)
        assert all(isinstance(v, str) for item in body["data"].values() for v in item.values())
    assert set(kinds) == {"truncated", "html", "wrong-types", "nan"}


def iban_valid(iban: str) -> bool:
    """ISO 7064 mod 97-10."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def test_pii_samples_are_valid() -> None:
    assert all(iban_valid(i) for i in PII_SAMPLES["iban"])
    assert all(luhn_valid(c) for c in PII_SAMPLES["card"])
    for ssn in PII_SAMPLES["ssn"]:
        area, group, serial = ssn.split("-")
        assert area not in {"000", "666"} and not area.startswith("9") and group != "00" and serial != "0000"
    ni = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")
    assert all(ni.match(n) for n in PII_SAMPLES["ni"])
    assert all(re.match(r"^[^@\s]+@[^@\s]+\.[a-z]+$", e) for e in PII_SAMPLES["email"])


def test_pii_rate_adds_a_pii_field_to_each_item_in_every_dialect(http: httpx.Client) -> None:
    knobs(http, piiRate=1.0)
    symbols = ["TTF", "Brent", "EUR/USD", "RDSa.L", "NG=F"]  # five items: every PII kind once
    data = generic(http, symbols, ["price_usd"]).json()["data"]
    notes = [data[s]["traderNote"] for s in symbols]
    assert all(data[s]["price_usd"] == price(s, "price_usd", NOW) for s in symbols)  # otherwise well-formed
    ibans = [m for note in notes for m in re.findall(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b", note)]
    assert ibans and all(iban_valid(i) for i in ibans)
    cards = [m for note in notes for m in re.findall(r"\b(?:\d[ -]?){13,19}\b", note)]
    assert cards and all(luhn_valid(c) for c in cards)

    items = bloomberg(http, symbols, ["PX_LAST"]).json()["data"]
    assert all("TRADER_NOTE" in item["fieldData"] for item in items)
    token = refinitiv_token(http).json()["access_token"]
    body = refinitiv(http, token, symbols, ["BID"]).json()
    assert body["headers"][-1] == {"name": "TRADER_NOTE"}
    assert any("GB82WEST12345698765432" in row[-1] or "DE89370400440532013000" in row[-1] for row in body["data"])


def test_status0_error_is_a_200_with_a_response_error_on_bloomberg_only(http: httpx.Client) -> None:
    knobs(http, status0ErrorRate=1.0)
    answer = bloomberg(http, ["TTF"], ["PX_LAST"])
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"status", "responseError"}
    assert body["status"] == 0
    assert body["responseError"]["category"] == "LIMIT"
    assert body["responseError"]["message"]
    assert generic(http, ["TTF"], ["price_usd"]).json()["data"]["TTF"]  # other dialects are unaffected


def test_fixed_latency_delays_each_answer(http: httpx.Client, md: MarketDataSandbox) -> None:
    knobs(http, latencyMs=30)
    for _ in range(3):
        started = time.perf_counter()
        assert generic(http, ["TTF"], ["price_usd"]).status_code == 200
        assert time.perf_counter() - started >= 0.030
    assert md.stats()["latencyMs"] == {"count": 3, "p50": 30.0, "p90": 30.0, "p99": 30.0, "max": 30.0}
    assert http.get(KNOBS).status_code == 200  # control endpoints are never delayed
    assert http.get(STATS).json()["requests"] == {GENERIC: 3}  # nor counted


def test_latency_does_not_hold_up_other_requests_and_250_connections_are_served(md: MarketDataSandbox) -> None:
    md.set_knobs({"latencyMs": 300})
    clients = [httpx.Client(base_url=md.base_url, verify=TLS, timeout=20) for _ in range(250)]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=250) as pool:
            statuses = list(pool.map(lambda c: generic(c, ["TTF"], ["price_usd"]).status_code, clients))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    assert statuses == [200] * 250
    assert elapsed < 0.3 * 250 / 10  # served side by side, not one after another (serially: 75 s)


def test_lognormal_latency_fits_p50_and_p99() -> None:
    dial = Knobs(seed=3)
    dial.update({"latencyMs": {"p50": 20, "p99": 35}})
    draws = sorted(dial.draw().latency_ms for _ in range(20_000))
    assert draws[10_000] == pytest.approx(20, rel=0.05)
    assert draws[19_800] == pytest.approx(35, rel=0.08)
    assert draws[0] > 0


@pytest.mark.parametrize(
    ("body", "knob"),
    [
        ({"failureRate": 1.5}, "failureRate"),
        ({"garbageRate": -0.1}, "garbageRate"),
        ({"piiRate": "0.5"}, "piiRate"),
        ({"status0ErrorRate": True}, "status0ErrorRate"),
        ({"latencyMs": -5}, "latencyMs"),
        ({"latencyMs": {"p50": 40, "p99": 20}}, "latencyMs"),
        ({"latencyMs": {"p50": 20}}, "latencyMs"),
        ({"latencyMs": {"p50": 0, "p99": 20}}, "latencyMs"),
        ({"latencyMs": "20ms"}, "latencyMs"),
        ({"seed": 1.5}, "seed"),
        ({"rate5xx": 0.1}, "rate5xx"),
    ],
)
def test_bad_knob_values_are_400_naming_the_knob(http: httpx.Client, body: dict[str, Any], knob: str) -> None:
    before = http.get(KNOBS).json()
    answer = http.put(KNOBS, json={"piiRate": 0.5, **body})
    assert answer.status_code == 400
    assert answer.json()["knob"] == knob
    assert knob in answer.json()["message"]
    assert http.get(KNOBS).json() == before  # nothing was applied


def test_knobs_put_merges_and_delete_clears(http: httpx.Client) -> None:
    assert http.get(KNOBS).json() == {
        "latencyMs": None,
        "failureRate": 0.0,
        "garbageRate": 0.0,
        "piiRate": 0.0,
        "status0ErrorRate": 0.0,
        "seed": 7,
    }
    knobs(http, failureRate=0.1, latencyMs={"p50": 20, "p99": 35})
    merged = knobs(http, piiRate=0.3, seed=9)
    assert merged == {
        "latencyMs": {"p50": 20.0, "p99": 35.0},
        "failureRate": 0.1,
        "garbageRate": 0.0,
        "piiRate": 0.3,
        "status0ErrorRate": 0.0,
        "seed": 9,
    }
    assert knobs(http, latencyMs=None)["latencyMs"] is None
    cleared = http.delete(KNOBS).json()
    assert cleared["failureRate"] == cleared["piiRate"] == 0.0
    assert cleared["seed"] == 7


def fault_sequence(seed: int) -> list[tuple[int, str]]:
    with MarketDataSandbox(seed=seed, clock=Clock()) as server, httpx.Client(base_url=server.base_url) as http:
        knobs(http, failureRate=0.15, garbageRate=0.15, piiRate=0.15, status0ErrorRate=0.15)
        sequence = []
        for i in range(60):
            answer = bloomberg(http, ["TTF"], ["PX_LAST"]) if i % 2 else generic(http, ["TTF"], ["price_usd"])
            sequence.append((answer.status_code, outcome(answer)))
        return sequence


def test_faults_are_deterministic_for_a_seed() -> None:
    first, again, other = fault_sequence(11), fault_sequence(11), fault_sequence(12)
    assert first == again
    assert first != other
    assert {o.split(":")[0] for _, o in first} == {"ok", "failure", "garbage", "pii", "status0-error"}


def test_putting_a_seed_restarts_the_draws(http: httpx.Client) -> None:
    def run() -> list[int]:
        knobs(http, failureRate=0.5, seed=5)
        return [generic(http, ["TTF"], ["price_usd"]).status_code for _ in range(20)]

    assert run() == run()


def test_stats_count_requests_per_path(http: httpx.Client) -> None:
    generic(http, ["TTF"], ["price_usd"])
    generic(http, ["TTF"], ["price_usd"], Accept="*/*")  # a 401 is counted too
    bloomberg(http, ["TTF"], ["PX_LAST"])
    token = refinitiv_token(http).json()["access_token"]
    refinitiv(http, token, ["TTF"], ["BID"])
    stats = http.get(STATS).json()
    assert stats["requests"] == {GENERIC: 2, BLOOMBERG: 1, TOKEN: 1, REFINITIV: 1}
    assert stats["outcomes"]["ok"] == 3
    assert stats["latencyMs"]["count"] == 3
    zeroed = http.delete(STATS).json()
    assert (zeroed["requests"], zeroed["tokenRequests"], zeroed["latencyMs"]) == ({}, 0, {"count": 0})


def test_unknown_paths_and_methods(http: httpx.Client) -> None:
    assert http.get("/nothing/here").status_code == 404
    assert http.post(GENERIC, headers=BEARER).status_code == 405
    assert http.get(BLOOMBERG).status_code == 405
    assert http.get("/sandbox/health").json() == {"status": "ok"}
