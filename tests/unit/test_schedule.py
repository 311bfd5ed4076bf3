"""Schedule expressions: crontab shorthands, Sunday-first day ranges, errors in our words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from checks.rules.schedule import InvalidSchedule, build_trigger

MONDAY = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)  # a Monday, half past noon


def next_fires(text: str, count: int) -> list[str]:
    trigger = build_trigger(text, "UTC")
    out, previous, now = [], None, MONDAY
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        out.append(fire.strftime("%a %d %H:%M"))
        previous, now = fire, fire
    return out


def test_daily_and_hourly_shorthands() -> None:
    assert next_fires("@daily", 2) == ["Tue 01 00:00", "Wed 02 00:00"]
    assert next_fires("@hourly", 2) == ["Mon 30 13:00", "Mon 30 14:00"]
    assert next_fires("@weekly", 1) == ["Sun 06 00:00"]


def test_sunday_first_ranges_mean_what_crontab_means() -> None:
    assert next_fires("0 9 * * SUN-SAT", 7) == [
        "Tue 01 09:00",
        "Wed 02 09:00",
        "Thu 03 09:00",
        "Fri 04 09:00",
        "Sat 05 09:00",
        "Sun 06 09:00",
        "Mon 07 09:00",
    ]
    assert next_fires("0 9 * * fri-mon", 4) == [
        "Fri 04 09:00",
        "Sat 05 09:00",
        "Sun 06 09:00",
        "Mon 07 09:00",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99 * * * *", "not a valid cron expression: the minute field allows 0-59, got 99"),
        ("0 24 * * *", "not a valid cron expression: the hour field allows 0-23, got 24"),
        ("0 0 0 * *", "not a valid cron expression: the day field allows 1-31, got 0"),
        ("0 0 * 13 *", "not a valid cron expression: the month field allows 1-12, got 13"),
        ("0 10-2 * * *", "not a valid cron expression: the hour range '10-2' runs backwards"),
        (
            "*/0 * * * *",
            "not a valid cron expression: the minute field's step '0' is not a whole number above 0",
        ),
        (
            "@often",
            "unknown shorthand '@often'; one of: @annually, @daily, @hourly, @midnight, @monthly, @weekly, @yearly",
        ),
        ("0 9 * * FUNDAY", "cron weekday 'FUNDAY' is not a day name (MON..SUN)"),
    ],
)
def test_errors_are_relaychecks_words(text: str, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        build_trigger(text, "UTC")
    assert str(caught.value) == message
    assert "Error validating" not in str(caught.value)
