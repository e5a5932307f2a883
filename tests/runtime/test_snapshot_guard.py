"""The market-snapshot guard: strict schema and PII filtering (issue 6, item 4).

Table-driven: every case id says what it proves. PII test numbers are the published test
values (card networks' test PANs, the IBAN registry's examples), never real data.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler.manifest.kinds.runtime import Instrument
from reconciler.runtime.snapshot.guard import GuardResult, guard
from reconciler.runtime.snapshot.pii import PII_CLASSES, find_pii

# ---------------------------------------------------------------- find_pii: positives

PII_POSITIVE = [
    # IBAN: ISO 7064 mod 97-10 plus the country's BBAN structure
    pytest.param("GB82 WEST 1234 5698 7654 32", "iban", id="iban-GB-spaced"),
    pytest.param("GB82WEST12345698765432", "iban", id="iban-GB-compact"),
    pytest.param("DE89 3704 0044 0532 0130 00", "iban", id="iban-DE-spaced-digits-look-like-amex-reported-once"),
    pytest.param("FR1420041010050500013M02606", "iban", id="iban-FR-compact-with-letter-in-bban"),
    pytest.param("NL91ABNA0417164300", "iban", id="iban-NL-compact"),
    pytest.param("ES91 2100 0418 4502 0005 1332", "iban", id="iban-ES-spaced"),
    pytest.param("NO93 8601 1117 947", "iban", id="iban-NO-shortest-15-chars"),
    pytest.param("acct GB82 WEST 1234 5698 7654 32 pls", "iban", id="iban-in-free-text-with-trailing-words"),
    pytest.param("gb82 west 1234 5698 7654 32", "iban", id="iban-lower-case"),
    # Cards: 13-19 digits, network prefix, Luhn
    pytest.param("4111 1111 1111 1111", "card", id="card-visa-spaced"),
    pytest.param("4012-8888-8888-1881", "card", id="card-visa-dashed"),
    pytest.param("4222222222222", "card", id="card-visa-13-digits"),
    pytest.param("5555 5555 5555 4444", "card", id="card-mastercard-5-series-spaced"),
    pytest.param("2223-0031-2200-3222", "card", id="card-mastercard-2-series-dashed"),
    pytest.param("3782 822463 10005", "card", id="card-amex-4-6-5-grouping"),
    pytest.param("371449635398431", "card", id="card-amex-compact"),
    pytest.param("6011 1111 1111 1117", "card", id="card-discover"),
    pytest.param("paid with 5105105105105100 today", "card", id="card-in-free-text"),
    # US SSN: dashed always (with validity rules); bare nine digits only after a keyword
    pytest.param("536-90-4399", "us_ssn", id="ssn-dashed"),
    pytest.param("client ssn 536-90-4399", "us_ssn", id="ssn-dashed-in-text"),
    pytest.param("SSN: 536904399", "us_ssn", id="ssn-bare-nine-digits-after-keyword"),
    pytest.param("social security number 536 90 4399", "us_ssn", id="ssn-spaced-after-long-keyword"),
    # UK NI number: pattern, suffix A-D required
    pytest.param("AB123456C", "uk_nino", id="nino-compact"),
    pytest.param("AB 12 34 56 C", "uk_nino", id="nino-spaced"),
    pytest.param("ni: ce 10 20 30 a", "uk_nino", id="nino-lower-case-in-text"),
    # E-mail
    pytest.param("jane.doe@example.com", "email", id="email-plain"),
    pytest.param("contact trader+fx@desk.bank.co.uk now", "email", id="email-plus-tag-subdomains-in-text"),
]


@pytest.mark.parametrize(("text", "pii_class"), PII_POSITIVE)
def test_find_pii_flags(text: str, pii_class: str) -> None:
    matches = find_pii(text)
    assert [m.pii_class for m in matches] == [pii_class]
    start, end = matches[0].span
    assert text[start:end].strip() == text[start:end]  # the span covers the item, not padding


# ---------------------------------------------------------------- find_pii: negatives

PII_NEGATIVE = [
    pytest.param("GB83 WEST 1234 5698 7654 32", id="iban-wrong-check-digits"),
    pytest.param("DE88370400440532013000", id="iban-DE-wrong-check-digits"),
    pytest.param("GB82 WEST 1234 5698 7654", id="iban-right-prefix-wrong-length"),
    pytest.param("4111 1111 1111 1112", id="card-16-digits-luhn-invalid"),
    pytest.param("4111111111111112", id="card-compact-luhn-invalid"),
    pytest.param("1698417000000", id="card-like-13-digit-epoch-ms-no-network-prefix"),
    pytest.param("7992739871300000", id="card-like-luhn-valid-but-no-network-prefix"),
    pytest.param("1234567890123.45", id="card-like-digits-of-a-decimal"),
    pytest.param("41111111111111111111", id="card-like-20-digits-too-long"),
    pytest.param("000-12-3456", id="ssn-area-000"),
    pytest.param("666-12-3456", id="ssn-area-666"),
    pytest.param("912-12-3456", id="ssn-area-9xx"),
    pytest.param("536-00-4399", id="ssn-group-00"),
    pytest.param("536-90-0000", id="ssn-serial-0000"),
    pytest.param("123456789", id="ssn-like-volume-nine-bare-digits"),
    pytest.param("volume 536904399", id="ssn-like-bare-digits-without-keyword"),
    pytest.param("SSN 000123456", id="ssn-keyword-but-area-000"),
    pytest.param("QQ123456C", id="nino-invalid-prefix-QQ"),
    pytest.param("GB123456A", id="nino-unallocated-prefix-GB"),
    pytest.param("AB123456", id="nino-without-suffix-could-be-an-order-id"),
    pytest.param("AB123456E", id="nino-suffix-beyond-D"),
    pytest.param("@CL", id="email-like-feed-code-no-local-part"),
    pytest.param("CL@NYMEX", id="email-like-no-tld"),
    pytest.param("EUR/USD", id="ticker-currency-pair-with-slash"),
    pytest.param("RDSa.L", id="ticker-ric-with-period"),
    pytest.param("ES.Z25", id="ticker-future-with-period"),
    pytest.param("NG=F", id="ticker-with-equals"),
    pytest.param("Natural_Gas_Hub", id="commodity-name"),
    pytest.param("Bloomberg_API_V3", id="provider-name"),
    pytest.param("2023-10-27T14:30:00Z", id="iso-timestamp-z"),
    pytest.param("2023-10-27T14:30:00.123456+00:00", id="iso-timestamp-micro-offset"),
    pytest.param("20231027T143000Z", id="iso-timestamp-basic-format"),
    pytest.param("2.45", id="price"),
    pytest.param("1.0891234567890123", id="price-with-many-decimals"),
    pytest.param("123456789012", id="volume-12-digits"),
    pytest.param("", id="empty-string"),
]


@pytest.mark.parametrize("text", PII_NEGATIVE)
def test_find_pii_does_not_flag(text: str) -> None:
    assert find_pii(text) == []


def test_find_pii_reports_every_item_in_order() -> None:
    text = "mail jane@example.com, iban NL91ABNA0417164300, ni AB123456C"
    assert [m.pii_class for m in find_pii(text)] == ["email", "iban", "uk_nino"]


# ---------------------------------------------------------------- guard: the happy path

INSTRUMENTS = [
    SimpleNamespace(symbol="NG=F", field="name", as_="commodity"),
    SimpleNamespace(symbol="NG=F", field="price_usd", as_="price_usd"),
    SimpleNamespace(symbol="EUR/USD", field="name", as_="currency_pair"),
    SimpleNamespace(symbol="EUR/USD", field="rate", as_="exchange_rate"),
    SimpleNamespace(symbol="RDSa.L", field="last", as_="RDSa.L"),
]

SEED = {
    "timestamp_utc": "2023-10-27T14:30:00Z",
    "commodity": "Natural_Gas_Hub",
    "price_usd": 2.45,
    "currency_pair": "EUR/USD",
    "exchange_rate": 1.089,
    "source_provider": "Bloomberg_API_V3",
}


def test_seed_payload_passes_untouched() -> None:
    result = guard(SEED, INSTRUMENTS)
    assert result.valid
    assert result.clean == SEED
    assert result.dropped == ()
    assert result.pii_count == {}
    assert result.missing == ("RDSa.L",)


def test_keys_and_values_with_slashes_and_periods_kept_intact() -> None:
    instruments = [{"symbol": "EUR/USD", "field": "rate", "as": "EUR/USD"}, {"symbol": "RDSa.L", "as": "RDSa.L"}]
    snapshot = {**SEED, "EUR/USD": 1.089, "RDSa.L": "RDSa.L"}
    snapshot = {k: v for k, v in snapshot.items() if k in {"timestamp_utc", "source_provider", "EUR/USD", "RDSa.L"}}
    result = guard(snapshot, instruments)
    assert result.valid and result.dropped == ()
    assert result.clean == {**snapshot}
    assert list(result.clean) == list(snapshot)


def test_manifest_instrument_model_is_accepted() -> None:
    instruments = [Instrument.model_validate({"symbol": "ES.Z25", "field": "last", "as": "es_future"})]
    result = guard({**SEED, "es_future": 4321.25}, instruments)
    assert result.clean["es_future"] == 4321.25
    assert {d.key for d in result.dropped} == {"commodity", "price_usd", "currency_pair", "exchange_rate"}


# ---------------------------------------------------------------- guard: schema cases

LONG = "k" * 257

SCHEMA_CASES = [
    pytest.param({"venue": "ICE"}, "venue", "not declared", True, id="unknown-key-dropped"),
    pytest.param({"price_usd": {"bid": 2.4}}, "price_usd", "got object", True, id="nested-object-dropped"),
    pytest.param({"price_usd": [2.4, 2.5]}, "price_usd", "got array", True, id="nested-list-dropped"),
    pytest.param({"price_usd": True}, "price_usd", "got boolean", True, id="bool-as-price-dropped"),
    pytest.param({"price_usd": None}, "price_usd", "got null", True, id="null-price-dropped"),
    pytest.param({"price_usd": math.nan}, "price_usd", "finite", True, id="nan-price-dropped"),
    pytest.param({"price_usd": math.inf}, "price_usd", "finite", True, id="infinite-price-dropped"),
    pytest.param({LONG: 1.0}, "k" * 64, "longer than 256", True, id="257-char-key-dropped-shown-truncated"),
    pytest.param({"commodity": "x" * 257}, "commodity", "at most 256", True, id="257-char-string-dropped"),
    pytest.param({"timestamp_utc": "2023-10-27T16:30:00+02:00"}, "timestamp_utc", "non-UTC", False, id="non-utc-ts"),
    pytest.param({"timestamp_utc": "2023-10-27T14:30:00"}, "timestamp_utc", "without an offset", False, id="naive-ts"),
    pytest.param({"timestamp_utc": "2023-10-27"}, "timestamp_utc", "without an offset", False, id="date-only-ts"),
    pytest.param({"timestamp_utc": "27/10/2023 14:30"}, "timestamp_utc", "not ISO-8601", False, id="non-iso-ts"),
    pytest.param({"timestamp_utc": 1698417000}, "timestamp_utc", "got number", False, id="epoch-number-ts"),
    pytest.param({"source_provider": 3}, "source_provider", "expected a string, got number", False, id="provider-int"),
    pytest.param({"source_provider": ""}, "source_provider", "non-empty", False, id="provider-empty"),
    pytest.param({"source_provider": "p" * 257}, "source_provider", "at most 256", False, id="provider-257-chars"),
]


@pytest.mark.parametrize(("override", "key", "reason_part", "still_valid"), SCHEMA_CASES)
def test_schema_violation_drops_field(override: dict[str, Any], key: str, reason_part: str, still_valid: bool) -> None:
    result = guard({**SEED, **override}, INSTRUMENTS)
    assert len(result.dropped) == 1
    dropped = result.dropped[0]
    assert dropped.key.startswith(key)
    assert reason_part in dropped.reason
    assert dropped.pii_class is None
    assert result.valid is still_valid
    assert set(result.clean) == set(SEED) - {k for k in override if k in SEED}
    assert result.pii_count == {}


@pytest.mark.parametrize("required", ["timestamp_utc", "source_provider"])
def test_missing_required_field_makes_snapshot_invalid(required: str) -> None:
    snapshot = {k: v for k, v in SEED.items() if k != required}
    result = guard(snapshot, INSTRUMENTS)
    assert not result.valid
    assert required in result.missing
    assert result.dropped == ()


@pytest.mark.parametrize(
    "ts",
    ["2023-10-27T14:30:00Z", "2023-10-27T14:30:00+00:00", "2023-10-27T14:30:00.250Z", "20231027T143000Z"],
    ids=["z", "plus-zero-offset", "fractional-seconds", "basic-format"],
)
def test_utc_timestamps_accepted_verbatim(ts: str) -> None:
    result = guard({**SEED, "timestamp_utc": ts}, INSTRUMENTS)
    assert result.valid and result.clean["timestamp_utc"] == ts


@pytest.mark.parametrize(
    "value",
    [0, -3, 123456789, 987654321012, 2.45, -0.5, "n/a"],
    ids=["zero", "negative-int", "nine-digit-volume", "12-digit-volume", "price", "negative-price", "string"],
)
def test_scalar_values_kept(value: object) -> None:
    result = guard({**SEED, "price_usd": value}, INSTRUMENTS)
    assert result.dropped == () and result.clean["price_usd"] == value


@pytest.mark.parametrize("snapshot", [[1, 2], None, "text"], ids=["array", "null", "string"])
def test_non_object_snapshot_is_invalid_not_raised(snapshot: Any) -> None:
    result = guard(snapshot, INSTRUMENTS)
    assert not result.valid and result.clean == {}
    assert result.dropped[0].key == "<snapshot>"


def test_non_string_key_dropped() -> None:
    result = guard({**SEED, 7: 1.0}, INSTRUMENTS)  # type: ignore[dict-item]
    assert result.valid and result.dropped[0].key == "<number key>"


# ---------------------------------------------------------------- guard: PII never attached

PII_IN_SNAPSHOT = [
    pytest.param("commodity", "GB82 WEST 1234 5698 7654 32", "iban", id="iban-in-declared-string"),
    pytest.param("currency_pair", "acct DE89370400440532013000", "iban", id="iban-in-free-text"),
    pytest.param("commodity", "4111-1111-1111-1111", "card", id="card-dashed"),
    pytest.param("price_usd", 4111111111111111, "card", id="card-as-json-integer"),
    pytest.param("commodity", "536-90-4399", "us_ssn", id="ssn"),
    pytest.param("commodity", "AB 12 34 56 C", "uk_nino", id="nino"),
    pytest.param("commodity", "jane.doe@example.com", "email", id="email"),
    pytest.param("source_provider", "feed run by jane.doe@example.com", "email", id="email-in-provider-invalidates"),
    pytest.param("venue", "jane.doe@example.com", "email", id="email-in-undeclared-field-still-counted"),
]


@pytest.mark.parametrize(("key", "value", "pii_class"), PII_IN_SNAPSHOT)
def test_pii_is_dropped_counted_and_never_echoed(key: str, value: object, pii_class: str) -> None:
    result = guard({**SEED, key: value}, INSTRUMENTS)
    assert key not in result.clean
    assert [(d.key, d.pii_class) for d in result.dropped] == [(key, pii_class)]
    assert result.pii_count == {pii_class: 1} and result.pii_total == 1
    assert result.valid is (key != "source_provider")
    _assert_not_echoed(result, str(value))


def test_pii_in_undeclared_key_is_redacted() -> None:
    result = guard({**SEED, "jane.doe@example.com": 1.0}, INSTRUMENTS)
    assert result.valid
    assert result.dropped[0].pii_class == "email"
    assert result.dropped[0].key.startswith("<redacted key")
    _assert_not_echoed(result, "jane.doe@example.com")


def test_several_pii_fields_counted_per_class() -> None:
    snapshot = {
        **SEED,
        "commodity": "5555 5555 5555 4444",
        "currency_pair": "NL91ABNA0417164300",
        "RDSa.L": "ab123456c",
    }
    result = guard(snapshot, INSTRUMENTS)
    assert result.pii_count == {"card": 1, "iban": 1, "uk_nino": 1}
    for secret in ("5555 5555 5555 4444", "NL91ABNA0417164300", "ab123456c"):
        _assert_not_echoed(result, secret)


def test_pii_class_names_are_the_documented_ones() -> None:
    assert PII_CLASSES == ("iban", "card", "us_ssn", "uk_nino", "email", "phone")


def _assert_not_echoed(result: GuardResult, secret: str) -> None:
    compact = secret.replace(" ", "").replace("-", "")
    for text in (repr(result), str(result), *(repr(d) for d in result.dropped), *(d.reason for d in result.dropped)):
        assert secret not in text
        assert compact not in text.replace(" ", "").replace("-", "")
    for match in find_pii(secret):
        assert secret[match.start : match.end] not in repr(match)
