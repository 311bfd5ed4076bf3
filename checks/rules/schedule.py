"""Schedule expressions: five-field cron, or `every 30m` style intervals.

APScheduler 3.x numbers cron weekdays from Monday = 0, while crontab(5) uses Sunday = 0; a
numeric weekday therefore silently runs a day late. Only day names (MON, tue-fri) are accepted in
the weekday field, which means the same thing to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # APScheduler is imported when a trigger is built, not with the config
    from apscheduler.triggers.base import BaseTrigger

_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
_DAY_NAMES = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


class InvalidSchedule(ValueError):
    """A schedule expression that cannot be used (message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """Either a cron expression (five fields) or a fixed interval in seconds."""

    text: str
    cron: tuple[str, str, str, str, str] | None = None
    interval_seconds: int | None = None


def parse_schedule(text: str) -> Schedule:
    value = " ".join(text.split())
    match = _INTERVAL.match(value)
    if match:
        amount = int(match.group(1))
        unit = match.group(2)[0].lower()
        if amount <= 0:
            raise InvalidSchedule("an interval must be at least 1")
        seconds = amount * _UNIT_SECONDS[unit]
        if seconds < 60:
            raise InvalidSchedule("an interval shorter than 1 minute would hammer the servers")
        return Schedule(text=value, interval_seconds=seconds)
    fields = value.split(" ")
    if len(fields) != 5:
        raise InvalidSchedule(
            "expected a five-field cron expression (minute hour day month weekday) "
            "or an interval such as 'every 30m'"
        )
    for name, item in zip(("minute", "hour", "day", "month", "weekday"), fields, strict=True):
        if not _FIELD.match(item):
            raise InvalidSchedule(f"cron {name} field {item!r} has characters cron does not allow")
    weekday = fields[4]
    if any(ch.isdigit() for ch in weekday.replace("*/", "")):
        raise InvalidSchedule(
            f"cron weekday {weekday!r}: use day names (MON, TUE-FRI), not numbers; "
            "APScheduler counts Monday as 0 where crontab counts Sunday as 0"
        )
    for word in re.findall(r"[A-Za-z]+", weekday):
        if word.lower() not in _DAY_NAMES:
            raise InvalidSchedule(f"cron weekday {word!r} is not a day name (MON..SUN)")
    minute, hour, day, month, dow = fields
    return Schedule(text=value, cron=(minute, hour, day, month, dow))


# cron fields the fast path can vouch for: numbers, `*`, ranges, steps and lists
_RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12)}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SIMPLE_TERM = re.compile(r"^(\*|(\w+)(?:-(\w+))?)(?:/(\d+))?$")


def _simple_field(item: str, low: int, high: int, names: tuple[str, ...] = ()) -> bool:
    """True when every term of a cron field is plainly valid (so APScheduler would accept it)."""

    def value(word: str | None) -> int | None:
        if word is None:
            return None
        if names:
            return names.index(word) if word in names else -1
        return int(word) if word.isdigit() else -1

    for term in item.lower().split(","):
        match = _SIMPLE_TERM.match(term)
        if match is None:
            return False
        star, first, last, step = match.groups()
        if step is not None and not 1 <= int(step) <= high - low + 1:
            return False
        if star == "*":
            continue
        start, end = value(first), value(last)
        if start is None or not low <= start <= high:
            return False
        if end is not None and not start <= end <= high:
            return False
    return True


def validate_schedule(text: str, timezone: str) -> str:
    """Validate a schedule expression and return its normal form; raises `InvalidSchedule`.

    Plain cron fields (numbers, ranges, steps, lists, day names) are checked here; anything
    else goes to APScheduler, which has the last word (`build_trigger`). So loading an ordinary
    configuration never imports APScheduler, and `explain` or `scan` start without it."""
    schedule = parse_schedule(text)
    if schedule.cron is not None:
        *numbered, weekday = schedule.cron
        plain = all(
            _simple_field(item, *_RANGES[name])
            for name, item in zip(("minute", "hour", "day", "month"), numbered, strict=True)
        ) and _simple_field(weekday, 0, 6, _WEEKDAYS)
        if not plain:
            build_trigger(text, timezone)
    return schedule.text


def build_trigger(text: str, timezone: str) -> BaseTrigger:
    """The APScheduler trigger for a schedule expression; raises `InvalidSchedule`.

    APScheduler's own parser has the last word on field values (`99 * * * *`), so the config
    is validated by building the trigger it will run with. APScheduler is imported here, not at
    the top: `explain` and `scan` load the config but never schedule anything, and the import
    costs them ~15 ms of start-up."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    schedule = parse_schedule(text)
    tz = ZoneInfo(timezone)
    if schedule.interval_seconds is not None:
        return cast("BaseTrigger", IntervalTrigger(seconds=schedule.interval_seconds, timezone=tz))
    assert schedule.cron is not None
    minute, hour, day, month, dow = schedule.cron
    try:
        trigger = CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=dow.lower(), timezone=tz
        )
    except ValueError as err:
        raise InvalidSchedule(f"not a valid cron expression ({err})") from None
    return cast("BaseTrigger", trigger)
