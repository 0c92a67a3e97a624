"""Dates for tests that go through the sync window: always counted from the moment the test runs.

The sync window starts a few weeks before now, so a fixed date in an end-to-end test silently
falls out of it one day. Everything here is derived from the (possibly faked) system clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from providers.base import SyncWindow

BERLIN = ZoneInfo("Europe/Berlin")


def now() -> datetime:
    return datetime.now(UTC)


def days_ahead(days: int, hour: int = 9, minute: int = 0, tz: tzinfo = UTC) -> datetime:
    """`hour`:`minute` local time in `tz`, `days` calendar days after today there."""
    today = datetime.now(tz).date()
    return at(today + timedelta(days=days), hour, minute, tz)


def at(day: date, hour: int, minute: int = 0, tz: tzinfo = UTC) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def weekday_ahead(weekday: int, min_days: int = 1, hour: int = 9, tz: tzinfo = UTC) -> datetime:
    """The first `weekday` (0 = Monday) at least `min_days` from today, at `hour` in `tz`."""
    first = datetime.now(tz).date() + timedelta(days=min_days)
    return at(first + timedelta(days=(weekday - first.weekday()) % 7), hour, tz=tz)


def steady_weekday_ahead(
    weekday: int, weeks: int, min_days: int = 7, hour: int = 9, zone: ZoneInfo = BERLIN
) -> datetime:
    """Like `weekday_ahead` (in UTC), but the first such day after which `zone` keeps its UTC
    offset for `weeks` weeks, so a local-time series there stays at the same UTC hour."""
    start = weekday_ahead(weekday, min_days, hour)
    while next_offset_change(zone, start - timedelta(days=3)) <= last_day(start, weeks):
        start += timedelta(weeks=1)
    return start


def last_day(start: datetime, weeks: int) -> date:
    return (start + timedelta(weeks=weeks)).date()


def next_offset_change(tz: ZoneInfo, after: datetime) -> date:
    """The local date on which `tz` next changes its UTC offset (a daylight-saving switch)."""
    day = after.astimezone(tz).date()
    offset = at(day, 12, tz=tz).utcoffset()
    for _ in range(400):
        day += timedelta(days=1)
        if at(day, 12, tz=tz).utcoffset() != offset:
            return day
    raise ValueError(f"{tz.key} has no offset change within a year")


def weekly_across_offset_change(weeks: int, hour: int = 10, tz: ZoneInfo = BERLIN) -> datetime:
    """The first of `weeks` (at least two) weekly Monday occurrences at `hour` in `tz`, at least
    two days from now, whose run crosses the zone's next daylight-saving switch."""
    before = max(1, weeks // 2)  # occurrences before the switch
    switch = next_offset_change(tz, now() + timedelta(days=8 + 7 * before))
    monday_after = switch + timedelta(days=(7 - switch.weekday()) % 7)
    return at(monday_after - timedelta(weeks=before), hour, tz=tz)


def window_around(moment: datetime, days_before: int = 7, days_after: int = 60) -> SyncWindow:
    return SyncWindow(moment - timedelta(days=days_before), moment + timedelta(days=days_after))
