"""Schedule expressions: five-field cron, or `every 30m` style intervals.

APScheduler 3.x numbers cron weekdays from Monday = 0, while crontab(5) uses Sunday = 0; a
numeric weekday therefore silently runs a day late. Only day names (MON, tue-fri) are accepted in
the weekday field, which means the same thing to both. Day ranges are read in crontab's week
(Sunday first), so `SUN-SAT` is the whole week and `FRI-MON` wraps over the weekend; they are
handed to APScheduler as a list of names, which it cannot misread. `@daily`, `@hourly`,
`@weekly`, `@monthly` and `@midnight` mean what they mean to crontab.

Every field is checked here against crontab's ranges, so a mistake is reported in relaycheck's
words ("the minute field allows 0-59, got 99") rather than the scheduler's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # APScheduler is imported when a trigger is built, not with the config
    from apscheduler.triggers.base import BaseTrigger

_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
# crontab's week: Sunday first
_WEEK = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_NAMES = set(_WEEK)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * SUN",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12)}


class InvalidSchedule(ValueError):
    """A schedule expression that cannot be used (message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """Either a cron expression (five fields) or a fixed interval in seconds."""

    text: str
    cron: tuple[str, str, str, str, str] | None = None
    interval_seconds: int | None = None


def _field_value(name: str, word: str) -> int:
    low, high = _RANGES[name]
    if name == "month" and word.lower() in _MONTHS:
        return _MONTHS.index(word.lower()) + 1
    if not word.isdigit():
        raise InvalidSchedule(
            f"not a valid cron expression: the {name} field allows {low}-{high}"
            + (" or month names (JAN-DEC)" if name == "month" else "")
            + f", got {word!r}"
        )
    value = int(word)
    if not low <= value <= high:
        raise InvalidSchedule(
            f"not a valid cron expression: the {name} field allows {low}-{high}, got {value}"
        )
    return value


def _check_field(name: str, text: str) -> None:
    """A minute/hour/day/month field: `*`, `N`, `A-B`, each with an optional `/STEP`, or a list."""
    for item in text.split(","):
        body, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise InvalidSchedule(
                f"not a valid cron expression: the {name} field's step {step!r} is not a "
                "whole number above 0"
            )
        if body == "*" or (name == "day" and body.lower() == "last"):
            continue
        start, dash, end = body.partition("-")
        first = _field_value(name, start)
        if dash and _field_value(name, end) < first:
            raise InvalidSchedule(
                f"not a valid cron expression: the {name} range {body!r} runs backwards"
            )


def _weekday_names(text: str) -> str:
    """The weekday field as APScheduler should see it: names only, ranges expanded in
    crontab's Sunday-first week (so SUN-SAT and FRI-MON mean what they say)."""
    out: list[str] = []
    for item in text.lower().split(","):
        body, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise InvalidSchedule(
                f"not a valid cron expression: the weekday field's step {step!r} is not a "
                "whole number above 0"
            )
        if body == "*":
            days = list(_WEEK)
        elif "-" in body:
            start, _, end = body.partition("-")
            first, last = _WEEK.index(start), _WEEK.index(end)
            count = (last - first) % 7 + 1
            days = [_WEEK[(first + i) % 7] for i in range(count)]
        else:
            days = [body]
        if step:
            days = days[:: int(step)]
        if not step and body == "*":
            return "*"
        out.extend(d for d in days if d not in out)
    return ",".join(out)


def parse_schedule(text: str) -> Schedule:
    value = " ".join(text.split())
    alias = _ALIASES.get(value.lower())
    if value.startswith("@") and alias is None:
        raise InvalidSchedule(
            f"unknown shorthand {value!r}; one of: {', '.join(sorted(set(_ALIASES)))}"
        )
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
    fields = (alias or value).split(" ")
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
    for name, item in (("minute", minute), ("hour", hour), ("day", day), ("month", month)):
        _check_field(name, item)
    return Schedule(text=value, cron=(minute, hour, day, month, _weekday_names(dow)))


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
    from zoneinfo import ZoneInfo

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
            minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=tz
        )
    except ValueError:
        # the fields passed the checks above; what is left is a combination APScheduler
        # refuses (its words name its internals, not the config)
        raise InvalidSchedule(
            "not a valid cron expression (minute hour day month weekday, e.g. '0 */6 * * *')"
        ) from None
    return cast("BaseTrigger", trigger)
