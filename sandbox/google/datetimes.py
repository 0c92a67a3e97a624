"""RFC 3339 and `EventDateTime` conversions (`date` for all-day, `dateTime` with an
offset unless `timeZone` is given; start inclusive, end exclusive)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from email.utils import formatdate
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", re.I)


def rfc3339(moment: datetime) -> str:
    """The form Google uses for `updated`/`created`: UTC with milliseconds and a `Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse a timestamp that must carry an offset (query parameters such as timeMin)."""
    moment = _parse_datetime(text)
    if moment.tzinfo is None:
        raise ValueError(f"missing time zone offset in {text!r}")
    return moment


def http_date(epoch_ms: int) -> str:
    """`Tue, 19 Nov 2013 01:13:52 GMT`, as in `X-Goog-Channel-Expiration`."""
    return formatdate(epoch_ms / 1000, usegmt=True)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def is_all_day(value: dict[str, Any]) -> bool:
    return "date" in value and value.get("date") is not None


def parse_event_datetime(value: dict[str, Any]) -> datetime | date:
    """An `EventDateTime` as a date (all-day) or an aware datetime; ValueError when malformed."""
    has_date = value.get("date") is not None
    has_time = value.get("dateTime") is not None
    if has_date == has_time:
        raise ValueError("exactly one of date and dateTime is required")
    if has_date:
        text = str(value["date"])
        if not _DATE.match(text):
            raise ValueError(f"invalid date {text!r}")
        return date.fromisoformat(text)
    moment = _parse_datetime(str(value["dateTime"]))
    tz_name = value.get("timeZone")
    if tz_name:
        tz = zone(str(tz_name))
        moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    if moment.tzinfo is None:
        raise ValueError("dateTime needs an offset unless timeZone is given")
    return moment


def instant(value: dict[str, Any], calendar_tz: str) -> datetime:
    """The UTC instant an `EventDateTime` begins; all-day dates start at midnight in the calendar's
    time zone, which is how Google compares them with timeMin/timeMax."""
    parsed = parse_event_datetime(value)
    if isinstance(parsed, datetime):
        return parsed.astimezone(UTC)
    return datetime.combine(parsed, time(0), zone(calendar_tz)).astimezone(UTC)


def _parse_datetime(text: str) -> datetime:
    if not _DATETIME.match(text):
        raise ValueError(f"invalid date-time {text!r}")
    return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
