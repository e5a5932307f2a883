"""The snapshot guard: the strict schema and PII filter every market snapshot passes before it is
attached to a recording.

A snapshot is a flat JSON object::

    {"timestamp_utc": "2023-10-27T14:30:00Z", "source_provider": "Bloomberg_API_V3",
     "commodity": "Natural_Gas_Hub", "price_usd": 2.45, "currency_pair": "EUR/USD", ...}

- `timestamp_utc` (required): an ISO-8601 date-time string with a UTC offset (`Z` or `+00:00`).
- `source_provider` (required): a string of at most 256 characters.
- one key per declared instrument (its `as`): a finite number (int or float; not bool, NaN or
  infinity) or a string of at most 256 characters.

Anything else is dropped field by field, with a reason: undeclared keys, keys longer than 256
characters, non-string keys, nested objects and arrays, nulls, wrong types, over-long strings,
and any value that contains PII (see `reconciler.runtime.snapshot.pii`; integers of 13 or more
digits are checked for card numbers too). Keys and string values are kept byte for byte
(`EUR/USD`, `RDSa.L`: no normalisation). A dropped value never appears in the result, its
reasons or its repr; an undeclared key that itself contains PII is shown redacted, and an
over-long key is shown truncated.

If a required field is missing or dropped, the result is `valid=False`: the injector then
attaches `{"market_snapshot": null, "status": "data_fetch_failed"}` instead of `clean`.
`pii_count` (per class, one per dropped field) feeds the PII metric and alert.

Called by: the snapshot injector (reconciler.runtime.snapshot), once per fetched snapshot.
Pure code, no I/O; a typical six-key snapshot takes a few microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol, TypeAlias

from reconciler.runtime.snapshot.pii import PiiClass, find_pii

MAX_KEY_CHARS: Final = 256
MAX_STRING_CHARS: Final = 256
TIMESTAMP_KEY: Final = "timestamp_utc"
PROVIDER_KEY: Final = "source_provider"
REQUIRED_KEYS: Final[tuple[str, ...]] = (TIMESTAMP_KEY, PROVIDER_KEY)

# Only this much of a value or key is scanned for PII (bounded work per field, about 2 ms in the
# worst case). Values over 256 characters are dropped anyway; the scan lets PII in them be counted.
_MAX_SCANNED_CHARS: Final = 1024
_MAX_TIMESTAMP_CHARS: Final = 64
_SHOWN_KEY_CHARS: Final = 64
_CARD_MIN_INT: Final = 10**12  # the smallest 13-digit integer: shorter ones cannot be card numbers
_UTC_OFFSET: Final = timedelta(0)

SnapshotValue: TypeAlias = int | float | str


class InstrumentLike(Protocol):
    """What the guard needs of an instrument: the key it is stored under (`as` in manifests).

    reconciler.manifest.kinds.runtime.Instrument satisfies it (`as_`); a mapping with an "as"
    key is accepted too.
    """

    @property
    def as_(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DroppedField:
    """One field kept out of the attached snapshot: its key (for display), why, and the PII class.

    Never holds the value. `key` is the snapshot key as given, except that an undeclared key
    containing PII is redacted and a key over 256 characters is truncated.
    """

    key: str
    reason: str
    pii_class: PiiClass | None = None


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The guard's verdict on one snapshot.

    `clean` holds the fields that passed (attach it only when `valid`); `dropped` says what was
    removed and why; `missing` lists declared keys the snapshot did not have; `pii_count`
    counts PII drops per class (only classes seen).
    """

    valid: bool
    clean: dict[str, SnapshotValue]
    dropped: tuple[DroppedField, ...] = ()
    missing: tuple[str, ...] = ()
    pii_count: dict[PiiClass, int] = field(default_factory=dict)

    @property
    def pii_total(self) -> int:
        return sum(self.pii_count.values())


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _declared_key(instrument: InstrumentLike | Mapping[str, object]) -> str | None:
    if isinstance(instrument, Mapping):
        key = instrument.get("as", instrument.get("as_"))
    else:
        key = getattr(instrument, "as_", None)
        if key is None:
            key = getattr(instrument, "as", None)
    return key if isinstance(key, str) else None


def _truncated(key: str) -> str:
    if len(key) > MAX_KEY_CHARS:
        return f"{key[:_SHOWN_KEY_CHARS]}… ({len(key)} chars)"
    return key


def _timestamp_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"expected an ISO-8601 UTC timestamp string, got {_json_type(value)}"
    if len(value) > _MAX_TIMESTAMP_CHARS:
        return "expected an ISO-8601 UTC timestamp string, got an over-long string"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return "expected an ISO-8601 UTC timestamp string, got a string that is not ISO-8601"
    offset = parsed.utcoffset()
    if offset is None:
        return "expected an ISO-8601 UTC timestamp, got one without an offset (Z or +00:00 required)"
    if offset != _UTC_OFFSET:
        return "expected an ISO-8601 UTC timestamp, got one with a non-UTC offset"
    return None


class _Collector:
    """Accumulates the drops and PII counts of one guard() call."""

    __slots__ = ("dropped", "pii_count")

    def __init__(self) -> None:
        self.dropped: list[DroppedField] = []
        self.pii_count: dict[PiiClass, int] = {}

    def drop(self, key: str, reason: str) -> None:
        self.dropped.append(DroppedField(key, reason))

    def pii(self, key: str, classes: Sequence[PiiClass], what: str = "value") -> None:
        first = classes[0]
        self.pii_count[first] = self.pii_count.get(first, 0) + 1
        reason = f"{what} contains PII ({', '.join(classes)}); withheld"
        self.dropped.append(DroppedField(key, reason, first))


def _pii_classes(text: str) -> tuple[PiiClass, ...]:
    return tuple(dict.fromkeys(match.pii_class for match in find_pii(text[:_MAX_SCANNED_CHARS])))


def _check_string(key: str, value: str, out: _Collector) -> str | None:
    """The string if it may be attached; otherwise None, with the drop recorded."""
    classes = _pii_classes(value)
    if classes:
        out.pii(key, classes)
        return None
    if len(value) > MAX_STRING_CHARS:
        out.drop(key, f"expected a string of at most {MAX_STRING_CHARS} characters, got {len(value)}")
        return None
    return value


def _check_instrument_value(key: str, value: object, out: _Collector) -> SnapshotValue | None:
    """The value if it may be attached; otherwise None, with the drop recorded."""
    if isinstance(value, str):
        return _check_string(key, value, out)
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.drop(key, f"expected a number or a string, got {_json_type(value)}")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        out.drop(key, "expected a finite number, got NaN or infinity")
        return None
    if isinstance(value, int) and abs(value) >= _CARD_MIN_INT:
        classes = _pii_classes(str(abs(value)))
        if classes:
            out.pii(key, classes)
            return None
    return value


def _check_undeclared(key: str, value: object, out: _Collector) -> None:
    """Drop an undeclared field; a key or string value carrying PII is counted (and the key redacted)."""
    key_classes = _pii_classes(key)
    if key_classes:
        out.pii(f"<redacted key: {len(key)} chars>", key_classes, what="undeclared key")
        return
    shown = _truncated(key)
    if len(key) > MAX_KEY_CHARS:
        reason = f"key longer than {MAX_KEY_CHARS} characters ({len(key)})"
    else:
        reason = "not declared: no instrument is stored under this key"
    value_classes = _pii_classes(value) if isinstance(value, str) else ()
    if value_classes:
        out.pii(shown, value_classes, what=f"{reason}; value")
    else:
        out.drop(shown, reason)


def guard(
    snapshot: Mapping[str, object],
    instruments: Sequence[InstrumentLike | Mapping[str, object]],
) -> GuardResult:
    """Validate `snapshot` against the strict schema for `instruments`; drop what fails.

    Never raises on bad input (a feed's payload is untrusted, so even a non-object is reported,
    not raised); never returns a dropped value.
    """
    out = _Collector()
    if not isinstance(snapshot, Mapping):
        out.drop("<snapshot>", f"expected a JSON object, got {_json_type(snapshot)}")
        return GuardResult(False, {}, tuple(out.dropped), REQUIRED_KEYS)

    declared: dict[str, None] = {}  # ordered: `missing` follows the manifest's order
    for instrument in instruments:
        as_key = _declared_key(instrument)
        if as_key is not None and 0 < len(as_key) <= MAX_KEY_CHARS:
            declared[as_key] = None

    clean: dict[str, SnapshotValue] = {}
    for key, value in snapshot.items():
        if not isinstance(key, str):
            out.drop(f"<{_json_type(key)} key>", "expected a string key")
            continue
        checked: SnapshotValue | None = None
        if key == TIMESTAMP_KEY:
            problem = _timestamp_problem(value)
            if problem is None and isinstance(value, str):
                checked = value
            else:
                out.drop(key, problem or "expected a string")
        elif key == PROVIDER_KEY:
            if not isinstance(value, str):
                out.drop(key, f"expected a string, got {_json_type(value)}")
            elif not value:
                out.drop(key, "expected a non-empty string")
            else:
                checked = _check_string(key, value, out)
        elif key in declared:
            checked = _check_instrument_value(key, value, out)
        else:
            _check_undeclared(key, value, out)
        if checked is not None:
            clean[key] = checked

    missing = tuple(key for key in (*REQUIRED_KEYS, *declared) if key not in snapshot)
    valid = all(key in clean for key in REQUIRED_KEYS)
    return GuardResult(valid, clean, tuple(out.dropped), missing, out.pii_count)
