"""Weekly recurrence as Calendar V3 allows it: one weekday per MASTER, an interval, an optional end.

A MASTER's first occurrence is its own `start`; later ones follow every `interval` weeks at the same
local wall-clock time. INSTANCE ids are derived from the master id and the occurrence's original
local start, so they are stable while the rule is, and change when the rule does (Wix warns of it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.wix.errors import invalid
from sandbox.wix.zoned import format_local, parse_local

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_ID_STAMP = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class WeeklyRule:
    interval: int
    day: str
    until: datetime | None  # local; occurrences on or before its date are included

    @classmethod
    def parse(cls, raw: Any, start: datetime) -> WeeklyRule:
        if not isinstance(raw, dict):
            raise invalid("event.recurrenceRule", "must be an object")
        if raw.get("frequency", "WEEKLY") != "WEEKLY":
            raise invalid("event.recurrenceRule.frequency", "only WEEKLY is supported")
        interval = raw.get("interval", 1)
        if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 52:
            raise invalid("event.recurrenceRule.interval", "must be an integer from 1 to 52")
        day = _parse_day(raw.get("days"), start)
        until = _parse_until(raw.get("until"), start)
        return cls(interval=interval, day=day, until=until)

    def to_json(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "frequency": "WEEKLY",
            "interval": self.interval,
            "days": [self.day],
        }
        if self.until is not None:
            rule["until"] = {"localDate": format_local(self.until)}
        return rule

    def ending_before(self, day: date) -> WeeklyRule:
        """The same rule, stopped on the day before `day` (used when a MASTER is split)."""
        last = datetime.combine(day - timedelta(days=1), datetime.min.time())
        return WeeklyRule(self.interval, self.day, last)


def _parse_day(days: Any, start: datetime) -> str:
    start_day = WEEKDAYS[start.weekday()]
    if days is None:
        return start_day
    if not isinstance(days, list) or len(days) != 1 or days[0] not in WEEKDAYS:
        raise invalid("event.recurrenceRule.days", "exactly one weekday per MASTER")
    if days[0] != start_day:
        raise invalid("event.recurrenceRule.days", f"start falls on {start_day}, not {days[0]}")
    return str(days[0])


def _parse_until(until: Any, start: datetime) -> datetime | None:
    if until is None:
        return None
    if not isinstance(until, dict):
        raise invalid("event.recurrenceRule.until", "must be {localDate}")
    parsed = parse_local(until.get("localDate"), "event.recurrenceRule.until.localDate")
    if parsed.date() < start.date():
        raise invalid("event.recurrenceRule.until", "ends before the first occurrence")
    return parsed


def occurrences(
    first: datetime, rule: WeeklyRule, *, not_before: datetime | None = None
) -> Iterator[datetime]:
    """Local starts of the series from the first one on or after `not_before`, in order.

    Unbounded when the rule has no `until`: callers stop iterating at their window's end.
    """
    step = timedelta(weeks=rule.interval)
    index = 0
    if not_before is not None and not_before > first:
        index = (not_before - first) // step
    current = first + index * step
    while rule.until is None or current.date() <= rule.until.date():
        if not_before is None or current >= not_before:
            yield current
        index += 1
        current = first + index * step


def is_occurrence(first: datetime, rule: WeeklyRule, candidate: datetime) -> bool:
    for start in occurrences(first, rule, not_before=candidate):
        return start == candidate
    return False


def instance_id(master_id: str, original_start: datetime) -> str:
    return f"{master_id}_{original_start.strftime(_ID_STAMP)}"


def split_instance_id(event_id: str) -> tuple[str, datetime] | None:
    """`(master id, original local start)` for an INSTANCE id, else None."""
    master_id, sep, stamp = event_id.rpartition("_")
    if not sep or not master_id:
        return None
    try:
        return master_id, datetime.strptime(stamp, _ID_STAMP)
    except ValueError:
        return None
