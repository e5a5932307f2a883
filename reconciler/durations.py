"""Durations as written in manifests: `200ms`, `10s`, `5m`, `1h`, `30d`, `2w`, `7y`.

A year is the Julian year, 365.25 days, so that `5y` is never satisfied by `1825d` (five
calendar years can contain two leap days). Platforms that take whole days get the ceiling
(`Duration.whole_days`); platforms that take years (S3 default retention) get the years as
written, when the manifest wrote years.

`DurationField` is the pydantic type manifests use; it parses strings, keeps the text the
user wrote (so plans and errors show `7y`, not a number of seconds) and publishes a JSON
Schema pattern for editors.

Called by: reconciler.manifest.kinds (field type), reconciler.policy (comparisons).
"""

from __future__ import annotations

import math
import re
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
_PATTERN = re.compile(r"^(?P<value>[0-9]+)(?P<unit>ms|s|m|h|d|w|y)$")
DURATION_PATTERN = r"^[0-9]+(ms|s|m|h|d|w|y)$"
DURATION_HINT = "write a whole number and a unit: ms, s, m, h, d, w or y (e.g. 200ms, 10s, 30d, 7y)"


@dataclass(frozen=True, slots=True, order=False)
class Duration:
    """A non-negative span of time, remembered as the user wrote it."""

    value: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text.strip())
        if match is None:
            raise ValueError(f"'{text}' is not a duration; {DURATION_HINT}")
        return cls(int(match["value"]), match["unit"])

    @property
    def milliseconds(self) -> int:
        return self.value * _UNIT_MS[self.unit]

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


def _coerce(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration string, got {value!r}; {DURATION_HINT}")
    return Duration.parse(value)


def positive(value: Duration) -> Duration:
    """AfterValidator for durations that must be longer than zero (intervals, retention)."""
    if value.milliseconds <= 0:
        raise ValueError(f"{value} is zero; write a duration longer than zero")
    return value


DurationField = Annotated[
    Duration,
    BeforeValidator(_coerce),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["200ms", "30d", "7y"]}),
]
