"""calsync's canonical event as Calendar V3 request fields (the writing half of the mapping;
`providers.wix.events` reads).

Wix wants local times with a zone, a title of 1-200 characters (a blank one is written as
"Busy"), notes up to 5000, a weekly rule with one weekday, and calsync's own data in its
`extendedFields` namespace; a location is written as a CUSTOM one named by the text. An update
writes only the fields whose value differs from what Wix holds, so a session's structured
location or notes survive an edit made outside.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from providers.errors import PermanentError, PermanentReason
from providers.wix.events import (
    BLANK_TITLE,
    LOCAL_FORMAT,
    MANAGED_BY,
    MAX_NOTES,
    MAX_TITLE,
    RRULE_DAYS,
    SYNC_NAMESPACE,
    WEEKDAYS,
    MalformedEvent,
    canonical_event,
    rrule_of,
)
from sync.event import CanonicalEvent, Field, Moment, normal_value, value_of

# Fields compared to decide what an update writes, with the request fields they map to.
_CONTENT = ((Field.TITLE, "title"), (Field.DESCRIPTION, "notes"),
            (Field.LOCATION, "location"), (Field.TRANSPARENCY, "transparency"))  # fmt: skip


def zone_for(event: CanonicalEvent, fallback: str | None) -> str:
    """The IANA zone to write a timed event in: its own, else its start's, else the fallback
    (the event's current zone on Wix), else UTC."""
    if event.time_zone:
        return event.time_zone
    tz = getattr(event.start, "tzinfo", None)
    if isinstance(tz, ZoneInfo):
        return tz.key
    return fallback or "UTC"


def when_fields(event: CanonicalEvent, fallback_zone: str | None) -> dict[str, Any]:
    """`start`, `end`, `allDay` and `timeZone` in request shape."""
    if event.all_day:
        fields: dict[str, Any] = {
            "start": {"localDate": _local_day(event.start)},
            "end": {"localDate": _local_day(event.end)},
            "allDay": True,
        }
        if fallback_zone:
            fields["timeZone"] = fallback_zone
        return fields
    zone = zone_for(event, fallback_zone)
    return {
        "start": {"localDate": _local_time(event.start, zone)},
        "end": {"localDate": _local_time(event.end, zone)},
        "allDay": False,
        "timeZone": zone,
    }


def content_fields(event: CanonicalEvent) -> dict[str, Any]:
    """Title, notes, location and transparency in request shape (blank ones omitted)."""
    title = event.title.strip()[:MAX_TITLE] or BLANK_TITLE
    fields: dict[str, Any] = {"title": title, "transparency": event.transparency.value.upper()}
    if event.description.strip():
        fields["notes"] = event.description[:MAX_NOTES]
    if event.location.strip():
        fields["location"] = {"type": "CUSTOM", "name": event.location}
    return fields


def wix_rule(rule: str, start: Moment, zone: str | None, all_day: bool) -> dict[str, Any]:
    """An RRULE value as Wix's weekly rule; what Wix cannot express is refused as invalid."""
    parts = dict(_rule_part(part) for part in rule.removeprefix("RRULE:").split(";") if part)
    if parts.get("FREQ") != "WEEKLY":
        raise _invalid(f"Wix repeats only weekly, not {parts.get('FREQ')}")
    days = [d for d in parts.get("BYDAY", RRULE_DAYS[start.weekday()]).split(",") if d]
    if len(days) != 1 or days[0] != RRULE_DAYS[start.weekday()]:
        raise _invalid("Wix repeats on one weekday, the first occurrence's")
    interval = int(parts.get("INTERVAL", "1"))
    out: dict[str, Any] = {"frequency": "WEEKLY", "interval": interval, "days": [WEEKDAYS[
        RRULE_DAYS.index(days[0])]]}  # fmt: skip
    last = _last_day(parts, start, zone, all_day, interval)
    if last is not None:
        out["until"] = {"localDate": f"{last.isoformat()}T00:00:00"}
    return out


def with_calsync_data(entity: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The entity's extendedFields with calsync's namespace set (others kept)."""
    extended = (
        entity.get("extendedFields") if isinstance(entity.get("extendedFields"), dict) else {}
    )
    namespaces = dict((extended or {}).get("namespaces") or {})
    namespaces[SYNC_NAMESPACE] = {"managedBy": MANAGED_BY, **data}
    return {"namespaces": namespaces}


def _last_day(
    parts: dict[str, str], start: Moment, zone: str | None, all_day: bool, interval: int
) -> date | None:
    if "COUNT" in parts:
        first = start if isinstance(start, date) and not isinstance(start, datetime) else None
        day = first or _local_date(start, zone)
        return day + timedelta(weeks=interval * (int(parts["COUNT"]) - 1))
    until = parts.get("UNTIL")
    if until is None:
        return None
    if len(until) == 8:
        return datetime.strptime(until, "%Y%m%d").date()
    instant = datetime.strptime(until.rstrip("Z"), "%Y%m%dT%H%M%S")
    if until.endswith("Z"):
        return _local_date(instant.replace(tzinfo=UTC), zone)
    return instant.date()


def _rule_part(part: str) -> tuple[str, str]:
    key, sep, value = part.partition("=")
    if not sep:
        raise _invalid(f"not a recurrence rule part: {part!r}")
    return key.upper(), value.upper()


def _local_date(moment_: Moment, zone: str | None) -> date:
    if isinstance(moment_, datetime):
        return moment_.astimezone(ZoneInfo(zone or "UTC")).date()
    return moment_


def _local_day(day: Moment) -> str:
    value = day.date() if isinstance(day, datetime) else day
    return f"{value.isoformat()}T00:00:00"


def _local_time(instant: Moment, zone: str) -> str:
    assert isinstance(instant, datetime)
    return instant.astimezone(ZoneInfo(zone)).strftime(LOCAL_FORMAT)


def _invalid(message: str) -> PermanentError:
    return PermanentError(PermanentReason.INVALID_EVENT, message)


def changed_fields(current: dict[str, Any], event: CanonicalEvent) -> dict[str, Any]:
    """The request fields whose value differs from `current` (None: clear the field)."""
    try:
        now = canonical_event(current)
    except MalformedEvent as error:
        raise _invalid(str(error)) from None
    wanted = content_fields(event)
    changed: dict[str, Any] = {}
    for field, key in _CONTENT:
        if normal_value(value_of(now, field)) != normal_value(value_of(event, field)):
            changed[key] = wanted.get(key)
    if changed.get("title") == now.title:
        del changed["title"]  # a blank title is written as "Busy", which Wix already has
    zone = str(current.get("timeZone") or "UTC")
    if moved(now, event):
        changed.update(when_fields(event, zone))
    rule = event.recurrence.rule if event.recurrence else None
    if current.get("recurrenceType") == "MASTER" and rule:
        current_rule = rrule_of(current.get("recurrenceRule") or {}, now.start, zone, now.all_day)
        if current_rule != rule or moved(now, event):
            changed["recurrenceRule"] = wix_rule(rule, event.start, zone, event.all_day)
    return changed


def moved(now: CanonicalEvent, event: CanonicalEvent) -> bool:
    """Times or all-day changed, or the zone (when the event names one)."""
    if (now.all_day, now.start, now.end) != (event.all_day, event.start, event.end):
        return True
    return event.time_zone is not None and event.time_zone != now.time_zone
