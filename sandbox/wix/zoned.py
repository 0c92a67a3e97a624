"""Calendar V3 ZonedDate: `{localDate: "YYYY-MM-DDThh:mm:ss", timeZone, utcDate}`.

Inside the sandbox a local time is a naive `datetime` that only means something together with an
IANA zone name; instants are aware UTC `datetime`s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.wix.errors import invalid

LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"


def zone(name: Any, field: str = "timeZone") -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise invalid(field, "time zone must be an IANA name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid(field, f"unknown time zone {name!r}") from exc


def parse_local(text: Any, field: str) -> datetime:
    """Parse `YYYY-MM-DDThh:mm:ss` strictly: Wix local dates carry no offset."""
    if not isinstance(text, str):
        raise invalid(field, "expected a local date-time string YYYY-MM-DDThh:mm:ss")
    try:
        return datetime.strptime(text, LOCAL_FORMAT)
    except ValueError as exc:
        raise invalid(field, f"{text!r} is not YYYY-MM-DDThh:mm:ss") from exc


def parse_utc(text: Any, field: str) -> datetime:
    if not isinstance(text, str):
        raise invalid(field, "expected an RFC 3339 UTC timestamp")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(field, f"{text!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise invalid(field, f"{text!r} has no offset")
    return parsed.astimezone(UTC)


def format_local(local: datetime) -> str:
    return local.strftime(LOCAL_FORMAT)


def to_utc(local: datetime, tz: str) -> datetime:
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def from_utc(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def format_utc(instant: datetime) -> str:
    """`utcDate` as the Calendar V3 examples print it: seconds precision, `Z`."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_timestamp(instant: datetime) -> str:
    """`createdDate`/`updatedDate`/`eventTime`: milliseconds and `Z`."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def zoned_date(local: datetime, tz: str) -> dict[str, str]:
    return {
        "localDate": format_local(local),
        "timeZone": tz,
        "utcDate": format_utc(to_utc(local, tz)),
    }


def adjusted(local: datetime, tz: str, view_tz: str) -> dict[str, str]:
    """The same instant shown in `view_tz` (adjustedStart/adjustedEnd)."""
    return zoned_date(from_utc(to_utc(local, tz), view_tz), view_tz)
