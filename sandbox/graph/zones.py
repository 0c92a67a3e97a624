"""Time zones and Graph's date-time shapes (`dateTimeTimeZone`, `Prefer: outlook.timezone`).

Graph accepts Windows time-zone names ("W. Europe Standard Time", what O365 sends) and IANA names,
and echoes the name the client asked for in `Prefer: outlook.timezone` (UTC when absent).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import GraphError, bad_request

# The Windows names clients use most, mapped to canonical IANA zones. Rarer names fall back to
# O365's CLDR-derived table below (whose reverse picks odd aliases, hence this list first).
_WINDOWS_ZONES = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Israel Standard Time": "Asia/Jerusalem",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Pacific Standard Time": "America/Bogota",
}

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


@lru_cache(maxsize=512)
def resolve_zone(name: str) -> tzinfo:
    """A Windows or IANA zone name -> tzinfo; 400 `TimeZoneNotSupportedException` if unknown."""
    candidate = _WINDOWS_ZONES.get(name) or _o365_windows_zone(name) or name
    try:
        return UTC if candidate in ("UTC", "Etc/UTC") else ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified: {name}",
        ) from None


def _o365_windows_zone(name: str) -> str | None:
    try:
        from O365.utils.windows_tz import IANA_TO_WIN
    except ImportError:  # the sandbox does not need O365; it only borrows its table
        return None
    for iana, windows in IANA_TO_WIN.items():
        if windows == name and "/" in iana and not iana.startswith(("US/", "Etc/")):
            try:
                ZoneInfo(iana)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return iana
    return None


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 as Graph does: up to 7 fraction digits; no offset means UTC."""
    try:
        value = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise bad_request(f"Invalid date-time value: {text!r}", "ErrorInvalidParameter") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_dttz(value: Any, field: str) -> tuple[datetime, str]:
    """A `dateTimeTimeZone` -> (UTC instant, the zone name given)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise bad_request(f"'{field}' must be a dateTimeTimeZone with a dateTime")
    zone_name = value.get("timeZone") or "UTC"
    zone = resolve_zone(zone_name)
    text = value["dateTime"].strip().replace("Z", "+00:00")
    try:
        local = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        raise bad_request(f"Invalid {field}.dateTime: {value['dateTime']!r}") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.astimezone(UTC), zone_name


def format_dttz(instant: datetime, zone_name: str) -> dict[str, str]:
    local = instant.astimezone(resolve_zone(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def format_utc(instant: datetime) -> str:
    """DateTimeOffset as Graph writes it (`createdDateTime`, `originalStart`)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def local_midnight(instant: datetime, zone_name: str) -> bool:
    local = instant.astimezone(resolve_zone(zone_name))
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def local_date(instant: datetime, zone_name: str) -> date:
    return instant.astimezone(resolve_zone(zone_name)).date()


def at_local(day: date, wall: timedelta, zone_name: str) -> datetime:
    """`day` at wall-clock offset `wall` after midnight in `zone_name`, as a UTC instant."""
    naive = datetime(day.year, day.month, day.day) + wall
    return naive.replace(tzinfo=resolve_zone(zone_name)).astimezone(UTC)


def preferences(header: str | None) -> dict[str, str]:
    """`Prefer: odata.maxpagesize=5, outlook.timezone="Pacific Standard Time"` -> dict."""
    found: dict[str, str] = {}
    for part in re.findall(r'([\w.\-]+)\s*=\s*("[^"]*"|[^,;\s]+)', header or ""):
        found[part[0].lower()] = part[1].strip('"')
    return found
