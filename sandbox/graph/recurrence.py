"""Graph's `patternedRecurrence`: validation and expansion into occurrence dates.

Supported patterns: daily, weekly, absoluteMonthly, absoluteYearly; ranges endDate, numbered, noEnd.
The relative (nth weekday) patterns answer 400 so a client relying on them notices.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .errors import bad_request

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PATTERNS = ("daily", "weekly", "absoluteMonthly", "absoluteYearly")
RANGES = ("endDate", "numbered", "noEnd")
_MAX_STEPS = 100_000  # a noEnd series is only expanded up to the asked window; this bounds bugs


@dataclass(frozen=True)
class Recurrence:
    pattern: str
    interval: int
    days_of_week: tuple[int, ...]  # Python weekday numbers, Monday = 0
    first_day_of_week: int
    day_of_month: int
    month: int
    range_type: str
    start_date: date
    end_date: date | None
    count: int | None
    zone: str

    def to_graph(self) -> dict[str, Any]:
        """The object as Graph returns it, with every property present."""
        return {
            "pattern": {
                "type": self.pattern,
                "interval": self.interval,
                "month": self.month,
                "dayOfMonth": self.day_of_month,
                "daysOfWeek": [DAYS[d] for d in self.days_of_week],
                "firstDayOfWeek": DAYS[self.first_day_of_week],
                "index": "first",
            },
            "range": {
                "type": self.range_type,
                "startDate": self.start_date.isoformat(),
                "endDate": (self.end_date or date(1, 1, 1)).isoformat(),
                "recurrenceTimeZone": self.zone,
                "numberOfOccurrences": self.count or 0,
            },
        }


def parse_recurrence(raw: Any, default_zone: str) -> Recurrence:
    if not isinstance(raw, dict) or not isinstance(raw.get("pattern"), dict):
        raise bad_request("recurrence must have a pattern and a range")
    pattern, rng = raw["pattern"], raw.get("range") or {}
    kind = pattern.get("type")
    if kind not in PATTERNS:
        raise bad_request(f"recurrence pattern type {kind!r} is not supported by the sandbox")
    if rng.get("type") not in RANGES:
        raise bad_request(f"recurrence range type {rng.get('type')!r} is invalid")
    interval = _positive(pattern.get("interval", 1), "pattern.interval")
    days = tuple(sorted({_day(d) for d in pattern.get("daysOfWeek") or []}))
    if kind == "weekly" and not days:
        raise bad_request("a weekly pattern needs daysOfWeek")
    start = _date(rng.get("startDate"), "range.startDate")
    end = _date(rng["endDate"], "range.endDate") if rng["type"] == "endDate" else None
    if end is not None and end < start:
        raise bad_request("range.endDate is before range.startDate")
    count = (
        _positive(rng.get("numberOfOccurrences"), "range.numberOfOccurrences")
        if (rng["type"] == "numbered")
        else None
    )
    return Recurrence(
        pattern=kind,
        interval=interval,
        days_of_week=days,
        first_day_of_week=_day(pattern.get("firstDayOfWeek") or "sunday"),
        day_of_month=int(pattern.get("dayOfMonth") or start.day),
        month=int(pattern.get("month") or start.month),
        range_type=rng["type"],
        start_date=start,
        end_date=end,
        count=count,
        zone=rng.get("recurrenceTimeZone") or default_zone,
    )


def occurrence_dates(rec: Recurrence, until: date) -> Iterator[date]:
    """Dates of the series in order, up to `until` (inclusive) or the range's end."""
    for produced, day in enumerate(_candidates(rec)):
        if day > until or (rec.end_date is not None and day > rec.end_date):
            return
        if rec.count is not None and produced >= rec.count:
            return
        yield day


def _candidates(rec: Recurrence) -> Iterator[date]:
    if rec.pattern == "daily":
        yield from (rec.start_date + timedelta(days=i * rec.interval) for i in range(_MAX_STEPS))
    elif rec.pattern == "weekly":
        yield from _weekly(rec)
    elif rec.pattern == "absoluteMonthly":
        yield from _monthly(rec)
    else:
        yield from _yearly(rec)


def _weekly(rec: Recurrence) -> Iterator[date]:
    offset = (rec.start_date.weekday() - rec.first_day_of_week) % 7
    week = rec.start_date - timedelta(days=offset)
    order = sorted(rec.days_of_week, key=lambda d: (d - rec.first_day_of_week) % 7)
    for _ in range(_MAX_STEPS):
        for weekday in order:
            day = week + timedelta(days=(weekday - rec.first_day_of_week) % 7)
            if day >= rec.start_date:
                yield day
        week += timedelta(weeks=rec.interval)


def _monthly(rec: Recurrence) -> Iterator[date]:
    year, month = rec.start_date.year, rec.start_date.month
    for _ in range(_MAX_STEPS):
        if rec.day_of_month <= calendar.monthrange(year, month)[1]:
            day = date(year, month, rec.day_of_month)
            if day >= rec.start_date:
                yield day
        month += rec.interval
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
        if year > 9999 - rec.interval:
            return


def _yearly(rec: Recurrence) -> Iterator[date]:
    for year in range(rec.start_date.year, 9999, rec.interval):
        if rec.day_of_month <= calendar.monthrange(year, rec.month)[1]:
            day = date(year, rec.month, rec.day_of_month)
            if day >= rec.start_date:
                yield day


def _day(name: Any) -> int:
    if not isinstance(name, str) or name.lower() not in DAYS:
        raise bad_request(f"invalid day of week {name!r}")
    return DAYS.index(name.lower())


def _date(text: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise bad_request(f"{field} must be a date (YYYY-MM-DD)") from None


def _positive(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{field} must be a positive integer") from None
    if number < 1:
        raise bad_request(f"{field} must be a positive integer")
    return number
