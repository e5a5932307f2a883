"""Durations: the grammar, the units, the bounds, and properties (hypothesis) that hold for
every text: parse/format round trips, order by length, only ValueError for anything else."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.dates import MAX_DAY, MIN_DAY
from reconciler.durations import MAX, MAX_DIGITS, Duration, between

UNITS = ("ms", "s", "m", "h", "d", "w", "y")


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [
        ("200ms", 200),
        ("10s", 10_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("30d", 2_592_000_000),
        ("2w", 1_209_600_000),
        ("7y", 7 * 31_557_600_000),
        ("0s", 0),
        ("1000y", 1000 * 31_557_600_000),
    ],
    ids=["milliseconds", "seconds", "minutes", "hours", "days", "weeks", "years-are-julian", "zero", "the-maximum"],
)
def test_parse(text: str, milliseconds: int) -> None:
    duration = Duration.parse(text)
    assert duration.milliseconds == milliseconds
    assert str(duration) == text


@pytest.mark.parametrize(
    "text",
    ["7 years", "7Y", "-1d", "1.5d", "", "d", "10", "1e30y", "7y\n", " 7y", "7y ", "７y", "٧y", "7\u200by", "+7y"],
    ids=repr,
)
def test_reject(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9" * 400 + "y", "is longer than 1000y"),
        ("99999999999y", "is longer than 1000y"),
        ("1001y", "is longer than 1000y"),
        ("52200w", "is longer than 1000y"),
        ("007y", "leading zeros are not allowed"),
    ],
    ids=["400-digits", "eleven-digits", "just-over", "in-weeks", "leading-zeros"],
)
def test_reject_with_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Duration.parse(text)


@pytest.mark.parametrize(
    "value", [None, 7, 7.0, True, b"7y", ["7y"]], ids=["none", "int", "float", "bool", "bytes", "list"]
)
def test_not_text_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration as text"):
        Duration.parse(value)


@pytest.mark.parametrize(
    ("value", "unit"),
    [(10**400, "y"), (-1, "s"), (1001, "y"), (1, "fortnight"), (True, "s")],
    ids=["huge", "negative", "over-max", "unknown-unit", "bool"],
)
def test_a_duration_cannot_be_built_out_of_bounds(value: int, unit: str) -> None:
    with pytest.raises(ValueError):
        Duration(value, unit)


def test_five_years_are_not_1825_days() -> None:
    assert Duration.parse("1825d") < Duration.parse("5y")
    assert Duration.parse("1827d") > Duration.parse("5y")


def test_whole_days_round_up() -> None:
    assert Duration.parse("7y").whole_days == 2557
    assert Duration.parse("25h").whole_days == 2


@pytest.mark.parametrize(
    ("text", "ok"),
    [("999ms", False), ("1s", True), ("1h", True), ("61m", False)],
    ids=["below", "low-bound", "high-bound", "above"],
)
def test_between(text: str, ok: bool) -> None:
    check = between(Duration(1, "s"), Duration(1, "h"))
    if ok:
        assert check(Duration.parse(text)) == Duration.parse(text)
    else:
        with pytest.raises(ValueError, match="write a duration from 1s to 1h"):
            check(Duration.parse(text))


# --- properties ---------------------------------------------------------------------------

durations = st.builds(
    lambda unit, fraction: Duration(int(fraction * (MAX.milliseconds // Duration(1, unit).milliseconds)), unit),
    st.sampled_from(UNITS),
    st.floats(0, 1),
) | st.builds(Duration, st.integers(0, 1000), st.sampled_from(UNITS))


@given(durations)
def test_format_then_parse_is_the_same_duration(duration: Duration) -> None:
    assert Duration.parse(str(duration)) == duration


@given(st.integers(0, 10**MAX_DIGITS - 1), st.sampled_from(UNITS))
def test_parse_then_format_gives_the_text_back(value: int, unit: str) -> None:
    text = f"{value}{unit}"
    try:
        duration = Duration.parse(text)
    except ValueError as error:
        assert "longer than 1000y" in str(error)
        assert value * Duration(1, unit).milliseconds > MAX.milliseconds
    else:
        assert str(duration) == text


@given(durations, durations)
def test_order_is_the_order_of_lengths(a: Duration, b: Duration) -> None:
    assert (a < b) == (a.milliseconds < b.milliseconds)
    assert (a <= b) == (a.milliseconds <= b.milliseconds)
    assert (a > b) == (b < a)
    assert (a >= b) == (b <= a)
    assert a.whole_days * 86_400_000 >= a.milliseconds


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        duration = Duration.parse(text)
    except ValueError:
        return
    assert 0 <= duration.milliseconds <= MAX.milliseconds
    assert str(duration) == text


@given(st.from_regex(r"[0-9]{1,30}(ms|s|m|h|d|w|y)", fullmatch=True))
def test_bounds_hold_for_every_well_formed_text(text: str) -> None:
    try:
        duration = Duration.parse(text)
    except ValueError:
        return
    assert duration <= MAX


@given(durations, st.dates(MIN_DAY, MAX_DAY))
def test_any_duration_from_any_day_in_bounds_stays_a_datetime(duration: Duration, day: dt.date) -> None:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    assert (start + duration.timedelta).year <= 9999
    assert (start - duration.timedelta).year >= 1
