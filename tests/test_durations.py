"""Durations parse as written, compare by length, and round up to whole days."""

from __future__ import annotations

import pytest

from reconciler.durations import Duration


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
    ],
    ids=["milliseconds", "seconds", "minutes", "hours", "days", "weeks", "years-are-julian"],
)
def test_parse(text: str, milliseconds: int) -> None:
    duration = Duration.parse(text)
    assert duration.milliseconds == milliseconds
    assert str(duration) == text


@pytest.mark.parametrize("text", ["7 years", "7Y", "-1d", "1.5d", "", "d", "10"], ids=repr)
def test_reject(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        Duration.parse(text)


def test_five_years_are_not_1825_days() -> None:
    assert Duration.parse("1825d") < Duration.parse("5y")
    assert Duration.parse("1827d") > Duration.parse("5y")


def test_whole_days_round_up() -> None:
    assert Duration.parse("7y").whole_days == 2557
    assert Duration.parse("25h").whole_days == 2
