"""What the market-data sandbox answers with: prices, the PII it can smuggle in, garbage bodies.

Prices are deterministic per (symbol, field) and vary slowly with time: a base price (from
INSTRUMENTS, else from a hash of the symbol) times a field factor (bid/ask spread, high/low,
open, close) times `1 + 0.4% * sin(2*pi*minute/60 + phase(symbol))`, rounded to the
instrument's 2-6 significant digits. Volume-like fields are integers. Any symbol answers
except one whose name contains "UNKNOWN" (any case); likewise any field except one whose
name contains "UNKNOWN". The seed does not change prices (it only drives the fault draws).

PII_SAMPLES are valid values of the kinds the runtime must keep out of a snapshot (IBAN with a
good ISO 7064 mod 97-10 check, Luhn-valid card numbers, e-mail addresses, US SSNs outside the
never-issued ranges, UK NI numbers with an allocated prefix); see REFERENCES.md §5.

Called by: reconciler.sandbox.marketdata. Imports only the stdlib.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

INSTRUMENTS: dict[str, tuple[float, int]] = {
    "Natural_Gas_Hub": (2.45, 3),
    "EURUSD": (1.0893, 5),
    "EUR/USD": (1.0893, 5),
    "GBP/USD": (1.2674, 5),
    "USDJPY": (149.82, 5),
    "RDSa.L": (2451.5, 5),
    "NG=F": (2.451, 4),
    "TTF": (35.82, 4),
    "Brent": (82.41, 4),
}
"""Known instruments: symbol -> (base price, significant digits)."""

_FIELD_FACTORS: dict[str, float] = {
    **dict.fromkeys(("bid", "px_bid", "bid_price"), 0.9995),
    **dict.fromkeys(("ask", "px_ask", "ask_price"), 1.0005),
    **dict.fromkeys(("high", "px_high", "high_1"), 1.006),
    **dict.fromkeys(("low", "px_low", "low_1"), 0.994),
    **dict.fromkeys(("open", "px_open", "open_prc"), 0.998),
    **dict.fromkeys(("close", "px_close_1d", "hst_close", "prev_close"), 0.997),
}
_VOLUME_FIELDS = frozenset({"volume", "px_volume", "acvol_1"})
AMPLITUDE = 0.004
PERIOD_MINUTES = 60

PII_KINDS = ("iban", "card", "email", "ssn", "ni")
PII_SAMPLES: dict[str, tuple[str, ...]] = {
    "iban": ("GB82WEST12345698765432", "DE89370400440532013000"),
    "card": ("4111 1111 1111 1111", "5500005555555559"),
    "email": ("jane.trader@acme-bank.example", "k.omalley@fx-desk.example"),
    "ssn": ("536-22-8174", "123-45-6789"),
    "ni": ("AB123456C", "JG103759A"),
}

GARBAGE_KINDS = ("truncated", "html", "wrong-types", "nan")
HTML_BODY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


def is_unknown(name: str) -> bool:
    """An instrument or field the feed does not know: its name contains "UNKNOWN"."""
    return "UNKNOWN" in name.upper()


def _base(symbol: str) -> tuple[float, int]:
    known = INSTRUMENTS.get(symbol)
    if known is not None:
        return known
    h = _hash(symbol)
    magnitude = 10.0 ** (h % 5 - 1)  # 0.1 .. 1000
    return magnitude * (1 + (h >> 8) % 9000 / 1000), 2 + (h >> 24) % 5


def round_significant(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def price(symbol: str, field: str, epoch_s: float) -> float | int:
    """The value of `field` of `symbol` at `epoch_s` (the caller checks is_unknown first)."""
    key = field.lower()
    if key in _VOLUME_FIELDS:
        h = _hash(symbol, "volume")
        return int(10 ** (4 + h % 3) * (1 + (h >> 8) % 900 / 100) + (int(epoch_s // 60) % PERIOD_MINUTES) * 17)
    base, digits = _base(symbol)
    phase = (_hash(symbol, "phase") % 6283) / 1000
    minute = int(epoch_s // 60)
    wave = 1 + AMPLITUDE * math.sin(2 * math.pi * (minute % PERIOD_MINUTES) / PERIOD_MINUTES + phase)
    return round_significant(base * wave * _FIELD_FACTORS.get(key, 1.0), digits)


def pii_value(index: int) -> tuple[str, str]:
    """The `index`-th PII sample, cycling through the kinds: (kind, value)."""
    kind = PII_KINDS[index % len(PII_KINDS)]
    samples = PII_SAMPLES[kind]
    return kind, samples[(index // len(PII_KINDS)) % len(samples)]


def pii_note(index: int) -> str:
    kind, value = pii_value(index)
    label = {"iban": "settle to", "card": "card", "email": "contact", "ssn": "SSN", "ni": "NI number"}[kind]
    return f"{label} {value}"


def _wrong_types(value: Any, key: str = "") -> Any:
    if key == "timestamp" and isinstance(value, str):
        return 1_761_575_400  # epoch seconds where an ISO string belongs
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return f"{value}"  # a string where a number belongs
    if isinstance(value, dict):
        return {k: _wrong_types(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrong_types(v) for v in value]
    return value


def _nan(value: Any, key: str = "") -> Any:
    if isinstance(value, bool) or key == "status":
        return value
    if isinstance(value, int | float):
        return math.nan
    if isinstance(value, dict):
        return {k: _nan(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan(v) for v in value]
    return value


def garbage(kind: str, payload: Any) -> tuple[bytes, str]:
    """A 200 body that is not the feed's JSON: (body, content type)."""
    if kind == "html":
        return HTML_BODY, "text/html"
    if kind == "wrong-types":
        return json.dumps(_wrong_types(payload)).encode(), "application/json"
    if kind == "nan":  # `NaN` is not JSON, though Python's json.loads accepts it
        return json.dumps(_nan(payload)).encode(), "application/json"
    whole = json.dumps(payload).encode()
    return whole[: max(1, len(whole) // 2)], "application/json"  # truncated mid-document
