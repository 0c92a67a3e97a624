"""Time zones and Graph's `dateTimeTimeZone` values.

Graph names zones the Windows way ("W. Europe Standard Time") and also accepts a short list of
IANA names; calsync keeps IANA names. We write the Windows name CLDR maps an IANA zone to (so a
weekly series keeps its wall-clock time across daylight-saving changes) and read every event in
UTC (`Prefer: outlook.timezone="UTC"`), taking the zone from `originalStartTimeZone`, mapped back
to IANA with CLDR's territory-001 table. O365's own Windows->IANA table is not used: it is the
reverse of a many-to-one map and names zones that do not exist ("US/Pacific-New").

CLDR lags the zone database: it still maps a few IANA zones to a Windows zone whose clocks no
longer agree (Antarctica/Vostok went from +7 to +5 in 2023), and some IANA zones have no entry
at all (the POSIX-style "EST5EDT", zones turned into links). For those we write the first
Windows zone whose territory-001 zone keeps the same UTC offsets over the next two years, so
a series still keeps its wall-clock time; only a zone no Windows zone matches is written in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

from sync.event import Moment

PREFER_UTC = 'outlook.timezone="UTC"'
_UTC_NAMES = {
    "UTC",
    "Etc/UTC",
    "Etc/GMT",
    "GMT",
    "Coordinated Universal Time",
    "tzone://Microsoft/Utc",
}
# Windows zones that Windows and Exchange still offer ("... - Old") and CLDR no longer maps.
_RETIRED_WINDOWS = {
    "Kamchatka Standard Time": "Asia/Kamchatka",
    "Mid-Atlantic Standard Time": "Etc/GMT+2",
}
_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_OFFSET_DAYS = 731  # how far ahead two zones must agree to count as the same clock
# Windows zones, those CLDR maps most IANA zones to first: the best known of equal clocks
# ("Pacific Standard Time" rather than the newer "British Columbia Standard Time").
_BY_SPREAD = sorted(win_tz, key=lambda w: (-sum(v == w for v in tz_win.values()), w))


@lru_cache(maxsize=1024)
def zone_info(name: str | None) -> tzinfo | None:
    """An IANA or Windows zone name as tzinfo; None when unknown."""
    if not name:
        return None
    if name in _UTC_NAMES:
        return UTC
    iana = win_tz.get(name) or _RETIRED_WINDOWS.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def iana_name(name: str | None) -> str | None:
    """The IANA name for a zone Graph reports (Windows or IANA); None for custom zones."""
    if not name:
        return None
    if name in _UTC_NAMES:
        return "UTC"
    candidate = win_tz.get(name) or _RETIRED_WINDOWS.get(name, name)
    return candidate if zone_info(candidate) is not None else None


@lru_cache(maxsize=1024)
def windows_name(iana: str | None) -> str | None:
    """The Windows name Graph understands for an IANA zone: CLDR's while its clock agrees,
    else one that keeps the same offsets; None when no Windows zone does."""
    if not iana:
        return None
    if iana in _UTC_NAMES:
        return "UTC"
    offsets = _offsets(iana)
    if offsets is None:
        return None
    cldr = tz_win.get(iana)
    if cldr is not None and _offsets(win_tz[cldr]) == offsets:
        return cldr
    return next((w for w in _BY_SPREAD if _offsets(win_tz[w]) == offsets), None)


@lru_cache(maxsize=1024)
def _offsets(iana: str) -> tuple[object, ...] | None:
    """The zone's clock over the next two years: its offset now, then each change of offset
    with its instant (to the minute); None for a name the zone database does not know."""
    try:
        zone = ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    clock: list[object] = [zone.utcoffset(day)]
    for _ in range(_OFFSET_DAYS):
        following = day + timedelta(days=1)
        if zone.utcoffset(following) != zone.utcoffset(day):
            clock.append((_change_between(zone, day, following), zone.utcoffset(following)))
        day = following
    return tuple(clock)


def _change_between(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The first minute at which `zone`'s offset differs from its offset at `before`."""
    offset = zone.utcoffset(before)
    while after - before > timedelta(minutes=1):
        middle = before + (after - before) / 2
        if zone.utcoffset(middle) == offset:
            before = middle
        else:
            after = middle
    return after.replace(second=0, microsecond=0)


def same_zone(iana: str | None, graph_name: str | None) -> bool:
    """Whether `graph_name` (as Graph reports it) is what writing `iana` produces."""
    if not iana or not graph_name:
        return False
    return graph_name in (iana, windows_name(iana))


def graph_time(moment: Moment, zone: str | None, all_day: bool) -> dict[str, str]:
    """A `dateTimeTimeZone` for writing: wall time in the event's zone, or UTC."""
    windows = windows_name(zone) if zone else None
    info = zone_info(zone) if windows else None
    if all_day or not isinstance(moment, datetime):
        day = moment.date() if isinstance(moment, datetime) else moment
        return {"dateTime": f"{day.isoformat()}T00:00:00", "timeZone": windows or "UTC"}
    assert isinstance(moment, datetime)
    local = moment.astimezone(info or UTC)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": windows or "UTC"}


def read_time(value: Any, all_day: bool, own_zone: str | None = None) -> Moment:
    """A `dateTimeTimeZone` as read: an aware datetime, or the date of an all-day event."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ValueError("not a dateTimeTimeZone")
    naive = parse_naive(value["dateTime"])
    zone = zone_info(value.get("timeZone")) or UTC
    if not all_day:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    if naive.time() == time(0) or own_zone is None:
        return naive.date()
    # An all-day event shown in another zone than its own: its date is midnight in its own.
    return naive.replace(tzinfo=zone).astimezone(zone_info(own_zone) or UTC).date()


def parse_naive(text: str) -> datetime:
    """Graph's "2030-03-04T09:00:00.0000000" (seven fraction digits) as a naive datetime."""
    cleaned = _FRACTION.sub(r"\1", text.strip())
    value = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    return (
        value.replace(tzinfo=None)
        if value.tzinfo is None
        else value.astimezone(UTC).replace(tzinfo=None)
    )


def parse_instant(text: str | None) -> datetime | None:
    """A DateTimeOffset ("2030-03-06T08:00:00Z") as an aware UTC datetime."""
    if not text:
        return None
    cleaned = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00")
    value = datetime.fromisoformat(cleaned)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_text(instant: datetime) -> str:
    """An instant as Graph's query parameters take it."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
