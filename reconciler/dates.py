"""Dates and instants as written in manifests and on the command line, within bounds.

A day is `YYYY-MM-DD` (a YAML date, or that text); an instant is ISO-8601 with its zone
(`2026-11-21T18:00:00Z`, `...+01:00`): a time without a zone is refused where an instant is
meant, because it would be read in whatever zone the machine running recon has. Both are
matched whole (no trailing newline or space) and must lie from `MIN_DAY` (1970-01-01, the
epoch every platform's timestamps count from) to `MAX_DAY` (2199-12-31). Within those bounds
a day plus or minus any `reconciler.durations.Duration` (at most 1000y) stays inside
Python's datetime range (years 1 to 9999), so no later `+ timedelta` can overflow, and
`9999-12-31` (the usual "forever") gets an error that says to leave the field out instead.

`parse_day` and `parse_instant` raise only ValueError, whatever they are given.
`DayField` and `InstantField` are the pydantic types manifests use.

Called by: reconciler.manifest.kinds (field types), reconciler.cli.common (option types).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from reconciler.durations import shown

MIN_DAY = dt.date(1970, 1, 1)
MAX_DAY = dt.date(2199, 12, 31)
DAY_HINT = "write a date like 2026-07-01"
INSTANT_HINT = "write a date, time and zone like 2026-11-21T18:00:00Z"
BOUNDS = f"from {MIN_DAY} to {MAX_DAY}"

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT = re.compile(
    r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)


def check_day(day: dt.date) -> dt.date:
    """`day` if it is within the bounds, else ValueError."""
    if not MIN_DAY <= day <= MAX_DAY:
        raise ValueError(f"{day.isoformat()} is outside the dates recon accepts ({BOUNDS})")
    return day


def parse_day(text: object) -> dt.date:
    """The day `text` (YYYY-MM-DD) names, or ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"expected a date as text, got {type(text).__name__}; {DAY_HINT}")
    if _DAY.fullmatch(text) is None:
        raise ValueError(f"{shown(text)} is not a date; {DAY_HINT}")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{shown(text)} is not a date ({error}); {DAY_HINT}") from None
    return check_day(day)


def check_instant(moment: dt.datetime) -> dt.datetime:
    """`moment` if it has a zone and lies within the bounds, else ValueError."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; {INSTANT_HINT} (Z is UTC)")
    # The wall-clock day is checked before converting: an offset moves it by under a day,
    # and near year 1 or 9999 the conversion itself would overflow.
    check_day(moment.date())
    return moment


def parse_instant(text: object) -> dt.datetime:
    """The instant `text` (ISO-8601 with a zone) names, or ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"expected a date and time as text, got {type(text).__name__}; {INSTANT_HINT}")
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(f"{shown(text)} is not a date and time; {INSTANT_HINT}")
    if match["zone"] is None:
        raise ValueError(f"{shown(text)} has no time zone; {INSTANT_HINT} (Z is UTC)")
    try:
        moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as error:
        raise ValueError(f"{shown(text)} is not a date and time ({error}); {INSTANT_HINT}") from None
    return check_instant(moment)


def day_start(day: dt.date) -> dt.datetime:
    """00:00 UTC on `day`."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def day_end(day: dt.date) -> dt.datetime:
    """00:00 UTC on the day after `day` (the exclusive end of an inclusive last day);
    `day` within the bounds, so the next day always exists."""
    return day_start(check_day(day)) + dt.timedelta(days=1)


def _coerce_day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError(f"a time of day is not allowed here; {DAY_HINT} (no time, no zone)")
    if isinstance(value, dt.date):
        return check_day(value)
    if isinstance(value, str):
        return parse_day(value)
    kind = "a number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    raise ValueError(f"expected a date, got {kind}; {DAY_HINT}")


def _coerce_instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return check_instant(value)
    if isinstance(value, dt.date):
        raise ValueError(f"a date alone is not an instant; {INSTANT_HINT}")
    if isinstance(value, str):
        return parse_instant(value)
    kind = "a number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    raise ValueError(f"expected a date and time, got {kind}; {INSTANT_HINT}")


DayField = Annotated[
    dt.date,
    BeforeValidator(_coerce_day),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-07-01"]}),
]
"""A day (YYYY-MM-DD) within the bounds; a time of day is refused."""

InstantField = Annotated[
    dt.datetime,
    BeforeValidator(_coerce_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-21T18:00:00Z"]}),
]
"""An instant with its zone within the bounds; a time without a zone is refused."""
