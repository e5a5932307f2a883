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
and any value that contains PII (see `reconciler.runtime.snapshot.pii`, which reads through
formatting: Unicode look-alikes, separators, encodings; numbers whose integer part has 13 or
more digits are checked for card numbers too). PII split across the string values of several
declared fields (`"GB82 WEST"` + `"1234 5698 7654 32"`) is found by scanning those values
joined, and every field it touches is dropped. Keys and string values are kept byte for byte
(`EUR/USD`, `RDSa.L`: detection reads a normalised copy, the value is never changed). A
dropped value never appears in the result, its reasons or its repr; an undeclared key that
itself contains PII is shown redacted, and an over-long key is shown truncated.

`instrument_count` is how many declared instrument values were kept: 0 with `valid` means the
feed answered but every instrument was dropped or missing, which the injector records as its
own status (`instruments_dropped`), never as `attached`.

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

# Only this much of a value or key is scanned for PII (bounded work per field, a few ms in the
# worst case). Values over 256 characters are dropped anyway; the scan lets PII in them be counted.
_MAX_SCANNED_CHARS: Final = MAX_STRING_CHARS
_MAX_DROPPED_SCANS: Final = 64
"""Fields dropped anyway (undeclared, over-long) are scanned, to be counted, up to this many per
snapshot: a feed answering thousands of junk keys cannot make the guard slow."""
_MAX_JOINED_CHARS: Final = 4096
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
    instrument_count: int = 0
    """Declared instrument values kept in `clean` (timestamp and provider not counted)."""

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

    __slots__ = ("dropped", "pii_count", "scans_left")

    def __init__(self) -> None:
        self.dropped: list[DroppedField] = []
        self.pii_count: dict[PiiClass, int] = {}
        self.scans_left = _MAX_DROPPED_SCANS

    def classes_of_dropped(self, text: str) -> tuple[PiiClass, ...]:
        """PII classes in a value that is dropped anyway (within the per-snapshot scan budget)."""
        if self.scans_left <= 0:
            return ()
        self.scans_left -= 1
        return _pii_classes(text)

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
    over_long = len(value) > MAX_STRING_CHARS
    classes = out.classes_of_dropped(value) if over_long else _pii_classes(value)
    if classes:
        out.pii(key, classes)
        return None
    if over_long:
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
    if abs(value) >= _CARD_MIN_INT:  # an int, or a float whose integer part could be a card number
        classes = _pii_classes(str(abs(value)) if isinstance(value, int) else f"{abs(value):.0f}")
        if classes:
            out.pii(key, classes)
            return None
    return value


def _check_undeclared(key: str, value: object, out: _Collector) -> None:
    """Drop an undeclared field; a key or string value carrying PII is counted (and the key redacted)."""
    key_classes = out.classes_of_dropped(key)
    if key_classes:
        out.pii(f"<redacted key: {len(key)} chars>", key_classes, what="undeclared key")
        return
    shown = _truncated(key)
    if len(key) > MAX_KEY_CHARS:
        reason = f"key longer than {MAX_KEY_CHARS} characters ({len(key)})"
    else:
        reason = "not declared: no instrument is stored under this key"
    value_classes = out.classes_of_dropped(value) if isinstance(value, str) else ()
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

    _drop_split_pii(clean, out)
    missing = tuple(key for key in (*REQUIRED_KEYS, *declared) if key not in snapshot)
    valid = all(key in clean for key in REQUIRED_KEYS)
    kept = sum(1 for key in clean if key in declared and key not in REQUIRED_KEYS)
    return GuardResult(valid, clean, tuple(out.dropped), missing, out.pii_count, kept)


def _drop_split_pii(clean: dict[str, SnapshotValue], out: _Collector) -> None:
    """Scan the kept string values joined (one space between them, in snapshot order): an item
    that spans two or more of them drops every field it touches."""
    keys = [key for key, value in clean.items() if isinstance(value, str) and key != TIMESTAMP_KEY]
    if len(keys) < 2:
        return
    bounds: list[tuple[str, int, int]] = []
    parts: list[str] = []
    offset = 0
    for key in keys:
        text = str(clean[key])
        bounds.append((key, offset, offset + len(text)))
        parts.append(text)
        offset += len(text) + 1
        if offset > _MAX_JOINED_CHARS:
            break
    touched: dict[str, list[PiiClass]] = {}
    for match in find_pii(" ".join(parts)):
        hit = [key for key, start, end in bounds if start < match.end and match.start < end]
        if len(hit) > 1:
            for key in hit:
                touched.setdefault(key, []).append(match.pii_class)
    for key, classes in touched.items():
        del clean[key]
        out.pii(key, tuple(dict.fromkeys(classes)), what="value, joined with the next field(s),")
