"""Durations as written in manifests and on the command line: `200ms`, `10s`, `5m`, `1h`,
`30d`, `2w`, `7y`.

A year is the Julian year, 365.25 days, so that `5y` is never satisfied by `1825d` (five
calendar years can contain two leap days). Platforms that take whole days get the ceiling
(`Duration.whole_days`); platforms that take years (S3 default retention) get the years as
written, when the manifest wrote years.

Every Duration is bounded by construction: the text is a whole number without leading zeros
(at most 15 digits) and a unit, matched whole (a trailing newline or space is not a
duration), and no Duration is longer than `MAX` (1000y). So `.milliseconds`,
`.timedelta` and datetime arithmetic near any date in `reconciler.dates`' bounds cannot
overflow, and a 400-digit `retain` is a clear error, not a traceback three layers later.
Fields narrow the range further with `between(low, high)` (a poll interval of 1ms, a grace
of a century). `parse` raises only ValueError, whatever it is given.

`DurationField` is the pydantic type manifests use; it parses strings, keeps the text the
user wrote (so plans and errors show `7y`, not a number of seconds) and publishes a JSON
Schema pattern for editors.

Called by: reconciler.manifest.kinds (field types), reconciler.policy (comparisons), the
providers (days and minutes for the platforms), reconciler.cli.common (option types).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNIT_MS: dict[str, int] = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 31_557_600_000,  # 365.25 days
}
MAX_DIGITS = 15
_PATTERN = re.compile(rf"(?P<value>0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}})(?P<unit>ms|s|m|h|d|w|y)")
_LOOSE = re.compile(r"(?P<value>[0-9]+)(?:ms|s|m|h|d|w|y)")
DURATION_PATTERN = r"^(0|[1-9][0-9]{0,14})(ms|s|m|h|d|w|y)$"
"""The JSON Schema pattern (ECMA-262: `$` is the end of the text) of the same grammar."""
DURATION_HINT = "write a whole number and a unit: ms, s, m, h, d, w or y (e.g. 200ms, 10s, 30d, 7y)"
MAX_SHOWN = 40
"""Characters of a rejected text repeated in an error; the rest is elided."""


def shown(text: str) -> str:
    """`text` quoted for an error message: control and invisible characters escaped (so a
    trailing newline is visible as \\n), and cut to MAX_SHOWN characters."""
    escaped = "".join(c if c.isprintable() and c != "\\" else ascii(c)[1:-1] for c in text[:MAX_SHOWN])
    return f"'{escaped}'" + ("…" if len(text) > MAX_SHOWN else "")


@dataclass(frozen=True, slots=True, order=False)
class Duration:
    """A non-negative span of time no longer than MAX, remembered as the user wrote it."""

    value: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_MS:
            raise ValueError(f"'{self.unit}' is not a duration unit; {DURATION_HINT}")
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
            raise ValueError(f"a duration is a whole number of {self.unit} from 0; {DURATION_HINT}")
        if self.value > _MAX_MS // _UNIT_MS[self.unit]:
            raise ValueError(f"{self.value}{self.unit} is longer than {MAX_TEXT}, the longest duration recon accepts")

    @classmethod
    def parse(cls, text: object) -> Duration:
        """The Duration `text` spells, or ValueError saying why it is none."""
        if not isinstance(text, str):
            raise ValueError(f"expected a duration as text, got {type(text).__name__}; {DURATION_HINT}")
        match = _PATTERN.fullmatch(text)
        if match is None:
            loose = _LOOSE.fullmatch(text)
            if loose is not None and loose["value"].startswith("0"):
                raise ValueError(f"{shown(text)} is not a duration: leading zeros are not allowed; {DURATION_HINT}")
            if loose is not None:
                raise ValueError(f"{shown(text)} is longer than {MAX_TEXT}, the longest duration recon accepts")
            raise ValueError(f"{shown(text)} is not a duration; {DURATION_HINT}")
        return cls(int(match["value"]), match["unit"])

    @property
    def milliseconds(self) -> int:
        return self.value * _UNIT_MS[self.unit]

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1000

    @property
    def timedelta(self) -> dt.timedelta:
        """The span as a timedelta (always representable: MAX is far below its limit)."""
        return dt.timedelta(milliseconds=self.milliseconds)

    @property
    def whole_days(self) -> int:
        """Days, rounded up: what a platform that counts in days must be given."""
        return math.ceil(self.milliseconds / _UNIT_MS["d"])

    def __str__(self) -> str:
        return f"{self.value}{self.unit}"

    def __lt__(self, other: Duration) -> bool:
        return self.milliseconds < other.milliseconds

    def __le__(self, other: Duration) -> bool:
        return self.milliseconds <= other.milliseconds

    def __gt__(self, other: Duration) -> bool:
        return self.milliseconds > other.milliseconds

    def __ge__(self, other: Duration) -> bool:
        return self.milliseconds >= other.milliseconds


MAX_TEXT = "1000y"
_MAX_MS = 1000 * _UNIT_MS["y"]
MAX = Duration(1000, "y")
"""The longest duration recon accepts anywhere: ten times the longest retention a platform
allows (S3 Object Lock: 100 years), and small enough that adding it to any date in
`reconciler.dates`' bounds stays inside Python's datetime range."""


def _coerce(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        kind = "a number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
        raise ValueError(f"expected a duration as text, got {kind}; {DURATION_HINT}")
    return Duration.parse(value)


def positive(value: Duration) -> Duration:
    """AfterValidator for durations that must be longer than zero (intervals, retention)."""
    if value.milliseconds <= 0:
        raise ValueError(f"{value} is zero; write a duration longer than zero")
    return value


def between(low: Duration, high: Duration, why: str = "") -> Callable[[Duration], Duration]:
    """A check (an AfterValidator) that a duration is from `low` to `high` inclusive;
    `why` (e.g. "a poll every millisecond would flood the switch") is added to the error."""
    reason = f" ({why})" if why else ""

    def check(value: Duration) -> Duration:
        if value < low:
            raise ValueError(f"{value} is shorter than {low}{reason}; write a duration from {low} to {high}")
        if value > high:
            raise ValueError(f"{value} is longer than {high}{reason}; write a duration from {low} to {high}")
        return value

    return check


DurationField = Annotated[
    Duration,
    BeforeValidator(_coerce),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["200ms", "30d", "7y"]}),
]
"""Durations parse as written, compare by length, and round up to whole days."""
