"""Pipeline schedules: checking `schedule.scheduleExpression` and `schedule.timezone` as the service
does, and computing when a schedule fires next.

Called by `backend._pipeline_fields` (CreateImagePipeline, UpdateImagePipeline) to refuse a bad
schedule and fill `dateNextRun`, and by `builds.BuildOperations.tick_schedules` to fire schedules
on the sandbox clock. Image Builder's cron has six fields, `minutes hours day-of-month month
day-of-week year`, with `?` in exactly one of the two day fields; day-of-month takes `L`, `LW` and
`NW`, day-of-week takes `L`, `NL` and `N#K` (1 = SUN ... 7 = SAT). `rate(N unit)` is accepted too,
counted from the moment the schedule was set. Times are wall-clock times in the schedule's IANA
time zone: a time that a daylight-saving jump skips fires at the instant it maps to (an hour
later on the wall clock), and a time that occurs twice fires once, at its first occurrence.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
import zoneinfo
from dataclasses import dataclass, field

from imagesync.sandbox.errors import SandboxError

MONTHS = {
    name: i
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
YEARS = (1970, 2199)
_RATE_RE = re.compile(r"^rate\((?P<n>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)$")
_RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """What is wrong with a schedule expression, in the words the error message uses."""


@dataclass
class Cron:
    minutes: set[int]
    hours: set[int]
    months: set[int]
    years: set[int]
    days: set[int] | None = None
    """Days of the month, or None when day-of-month is `?`."""
    last_day: bool = False
    last_weekday: bool = False
    nearest_weekday: set[int] = field(default_factory=set)
    weekdays: set[int] | None = None
    """Days of the week (1 = Sunday), or None when day-of-week is `?`."""
    last_of_weekday: set[int] = field(default_factory=set)
    nth_weekday: set[tuple[int, int]] = field(default_factory=set)

    def day_matches(self, day: dt.date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        if self.days is not None or self.last_day or self.last_weekday or self.nearest_weekday:
            if day.day in (self.days or set()) or (self.last_day and day.day == last):
                return True
            if self.last_weekday and day == _weekday_before(dt.date(day.year, day.month, last)):
                return True
            return any(day == _nearest_weekday(day.year, day.month, n) for n in self.nearest_weekday)
        weekday = day.isoweekday() % 7 + 1  # Sunday is 1
        if weekday in (self.weekdays or set()):
            return True
        if weekday in self.last_of_weekday and day.day + 7 > last:
            return True
        return (weekday, (day.day - 1) // 7 + 1) in self.nth_weekday


@dataclass
class Rate:
    seconds: int


def _weekday_before(day: dt.date) -> dt.date:
    while day.isoweekday() > 5:
        day -= dt.timedelta(days=1)
    return day


def _nearest_weekday(year: int, month: int, n: int) -> dt.date | None:
    """`NW`: the weekday nearest day N, without leaving the month."""
    last = calendar.monthrange(year, month)[1]
    if n > last:
        return None
    day = dt.date(year, month, n)
    if day.isoweekday() == 6:
        return day - dt.timedelta(days=1) if n > 1 else day + dt.timedelta(days=2)
    if day.isoweekday() == 7:
        return day + dt.timedelta(days=1) if n < last else day - dt.timedelta(days=2)
    return day


def _value(text: str, low: int, high: int, names: dict[str, int] | None, what: str) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ScheduleError(f"'{text}' is not a valid {what} value")
    value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"the {what} value {value} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, what: str, names: dict[str, int] | None = None) -> set[int]:
    """A standard field: `*`, values, `A-B` ranges (wrapping past the end), `/step`, comma lists."""
    values: set[int] = set()
    for term in text.split(","):
        base, _, step_text = term.partition("/")
        if "/" in step_text or (term.count("/") and not step_text):
            raise ScheduleError(f"'{term}' is not a valid {what} increment")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"'{step_text}' is not a valid {what} increment")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, second = base.partition("-")
            start, end = _value(first, low, high, names, what), _value(second, low, high, names, what)
        else:
            start = _value(base, low, high, names, what)
            end = high if step_text else start
        span = (end - start) % (high - low + 1) if end < start else end - start
        for offset in range(0, span + 1, step):
            values.add(low + (start - low + offset) % (high - low + 1))
    return values


def parse_cron(body: str) -> Cron:
    fields = body.split(" ")
    if any(not f for f in fields):
        raise ScheduleError("the fields of a cron expression are separated by single spaces")
    if len(fields) != 6:
        raise ScheduleError(
            f"a cron expression has six fields separated by single spaces (minutes hours day-of-month month "
            f"day-of-week year), got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    cron = Cron(
        minutes=_field(minute, 0, 59, "minutes"),
        hours=_field(hour, 0, 23, "hours"),
        months=_field(month, 1, 12, "month", MONTHS),
        years=_field(year, *YEARS, "year"),
    )
    if dom != "?":
        cron.days = set()
        for term in dom.split(","):
            upper = term.upper()
            if upper == "L":
                cron.last_day = True
            elif upper == "LW":
                cron.last_weekday = True
            elif upper.endswith("W"):
                cron.nearest_weekday.add(_value(term[:-1], 1, 31, None, "day-of-month"))
            else:
                cron.days |= _field(term, 1, 31, "day-of-month")
    if dow != "?":
        cron.weekdays = set()
        for term in dow.split(","):
            upper = term.upper()
            if upper == "L":
                cron.weekdays.add(7)  # the last day of the week: Saturday
            elif upper.endswith("L"):
                cron.last_of_weekday.add(_value(term[:-1], 1, 7, DAYS, "day-of-week"))
            elif "#" in term:
                day, _, nth = term.partition("#")
                if not nth.isdigit() or not 1 <= int(nth) <= 5:
                    raise ScheduleError(f"'{term}': the number after '#' must be 1-5")
                cron.nth_weekday.add((_value(day, 1, 7, DAYS, "day-of-week"), int(nth)))
            else:
                cron.weekdays |= _field(term, 1, 7, "day-of-week", DAYS)
    return cron


def parse_expression(expression: str) -> Cron | Rate:
    if expression.startswith("cron(") and expression.endswith(")"):
        return parse_cron(expression[5:-1])
    match = _RATE_RE.match(expression)
    if match:
        n, unit = int(match["n"]), match["unit"]
        if (n == 1) != (not unit.endswith("s")):
            raise ScheduleError("the unit must be singular for 1 and plural otherwise, as in rate(1 day), rate(2 days)")
        return Rate(n * _RATE_SECONDS[unit.rstrip("s")])
    if expression.startswith("rate("):
        raise ScheduleError("a rate expression is rate(N minute|minutes|hour|hours|day|days)")
    raise ScheduleError("the expression must be cron(...) with six fields or rate(N unit)")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone(name: str) -> zoneinfo.ZoneInfo:
    if name not in _zones():  # also refuses "America" (a directory of zones) and "posixrules"
        raise ScheduleError(f"'{name}' is not an IANA time zone")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"'{name}' is not an IANA time zone") from exc


def validate(schedule: dict[str, object], member: str = "schedule") -> None:
    """Refuse a schedule the service refuses, naming the member (`schedule.scheduleExpression`)."""
    expression = schedule.get("scheduleExpression")
    if isinstance(expression, str):
        try:
            parse_expression(expression)
        except ScheduleError as exc:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter '{member}.scheduleExpression' is not valid. Invalid schedule "
                f"expression. Details: {exc}.",
            ) from None
    timezone = schedule.get("timezone")
    if isinstance(timezone, str):
        try:
            zone(timezone)
        except ScheduleError as exc:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter '{member}.timezone' is not valid. {exc}.",
            ) from None


def next_fire(
    expression: str, timezone: str, after: dt.datetime, anchor: dt.datetime | None = None
) -> dt.datetime | None:
    """The first fire time strictly after `after` (UTC), or None when the schedule never fires again.

    `anchor` is where a rate schedule counts from (default: `after`).
    """
    parsed = parse_expression(expression)
    if isinstance(parsed, Rate):
        start = anchor or after
        periods = max(0, int((after - start).total_seconds() // parsed.seconds) + 1)
        return start + dt.timedelta(seconds=parsed.seconds * periods)
    tz = zone(timezone)
    local = after.astimezone(tz)
    day = local.date()
    hours, minutes = sorted(parsed.hours), sorted(parsed.minutes)
    while day.year <= YEARS[1]:
        if day.year not in parsed.years:
            day = dt.date(day.year + 1, 1, 1)
            continue
        if day.month not in parsed.months:
            day = dt.date(day.year + 1, 1, 1) if day.month == 12 else dt.date(day.year, day.month + 1, 1)
            continue
        if parsed.day_matches(day):
            for hour in hours:
                for minute in minutes:
                    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(dt.UTC)
                    if moment > after:
                        return moment
        day += dt.timedelta(days=1)
    return None
