"""Issue 17, class 6: dates and instants (reconciler.dates). The parsers take text whole and
within bounds, raise only ValueError, and round-trip; a time without a zone is never an
instant; and the providers' day arithmetic cannot overflow at the edges of the calendar
(a hold `to: 9999-12-31` plus one day was an OverflowError)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.dates import MAX_DAY, MIN_DAY, check_instant, day_end, day_start, parse_day, parse_instant
from reconciler.providers.aws.object_holds import Period
from reconciler.providers.genesys.holds import interval

TODAY = dt.date(2026, 11, 21)
zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9999-12-31", "outside the dates recon accepts"),
        ("0001-01-01", "outside the dates recon accepts"),
        ("1969-12-31", "outside the dates recon accepts"),
        ("2200-01-01", "outside the dates recon accepts"),
        ("2026-07-01\n", "is not a date"),
        (" 2026-07-01", "is not a date"),
        ("２０２６-07-01", "is not a date"),
        ("2026-7-1", "is not a date"),
        ("20260701", "is not a date"),
        ("2026-02-29", "day is out of range"),
        ("2026-07-01T00:00:00", "is not a date"),
    ],
    ids=repr,
)
def test_parse_day_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_day(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-21T18:00:00", "has no time zone"),
        ("2026-11-21 18:00", "has no time zone"),
        ("9999-12-31T23:59:59Z", "outside the dates recon accepts"),
        ("0001-01-01T00:00:00+14:00", "outside the dates recon accepts"),
        ("2026-11-21T18:00:00Z\n", "is not a date and time"),
        ("2026-11-21T25:00:00Z", "is not a date and time"),
        ("2026-11-21", "is not a date and time"),
        ("1767225600", "is not a date and time"),
    ],
    ids=repr,
)
def test_parse_instant_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_instant(text)


def test_a_naive_datetime_is_not_an_instant() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        check_instant(dt.datetime(2026, 11, 21, 18))


@pytest.mark.parametrize("value", [None, 20260701, 1.5, b"2026-07-01", dt.date(2026, 7, 1)], ids=repr)
def test_parsers_raise_value_error_for_what_is_not_text(value: object) -> None:
    with pytest.raises(ValueError):
        parse_day(value)
    with pytest.raises(ValueError):
        parse_instant(value)


@given(st.dates(MIN_DAY, MAX_DAY))
def test_day_round_trip(day: dt.date) -> None:
    assert parse_day(day.isoformat()) == day
    assert day_end(day) - day_start(day) == dt.timedelta(days=1)


@given(st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2199, 12, 31, 23, 59, 59), timezones=zones))
def test_instant_round_trip(moment: dt.datetime) -> None:
    parsed = parse_instant(moment.isoformat())
    assert parsed == moment
    assert parsed.utcoffset() == moment.utcoffset()
    parsed.astimezone(dt.UTC)  # converting never overflows inside the bounds


@given(st.text(max_size=40))
def test_any_text_is_a_day_or_a_value_error(text: str) -> None:
    try:
        day = parse_day(text)
    except ValueError:
        return
    assert MIN_DAY <= day <= MAX_DAY
    assert day.isoformat() == text


@given(st.text(max_size=40))
def test_any_text_is_an_instant_or_a_value_error(text: str) -> None:
    try:
        moment = parse_instant(text)
    except ValueError:
        return
    assert moment.tzinfo is not None
    assert MIN_DAY <= moment.date() <= MAX_DAY


@given(st.dates(MIN_DAY, MAX_DAY), st.dates(MIN_DAY, MAX_DAY))
def test_day_order_is_the_order_of_the_text(a: dt.date, b: dt.date) -> None:
    assert (parse_day(a.isoformat()) < parse_day(b.isoformat())) == (a.isoformat() < b.isoformat())


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param(
            {"from": "0001-01-01", "to": "9999-12-31"},
            "0001-01-01T00:00:00.000Z/2026-11-22T00:00:00.000Z",
            id="calendar-edges-end-at-today",
        ),
        pytest.param(
            {"from": "2026-07-01", "to": "2199-12-31"},
            "2026-07-01T00:00:00.000Z/2026-11-22T00:00:00.000Z",
            id="far-future-end-is-today",
        ),
        pytest.param(
            {"from": "9999-12-31", "to": "9999-12-31"},
            "9999-12-31T00:00:00.000Z/9999-12-31T00:00:00.000Z",
            id="no-day-after-the-last-date",
        ),
    ],
)
def test_hold_interval_never_overflows(scope: dict[str, str], expected: str) -> None:
    assert interval(scope, TODAY) == expected


def test_archive_period_ends_today() -> None:
    assert Period.of({"from": "0001-01-01", "to": "9999-12-31"}, TODAY) == Period(dt.date(1, 1, 1), TODAY)
