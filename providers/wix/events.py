"""Calendar V3 event JSON read into calsync's canonical event (see docs/wix.md);
`providers.wix.fields` is the writing half.

- Times: `start`/`end` are ZonedDates; a timed event is read from `utcDate` and shown in the
  event's `timeZone`; an all-day one is dated from `localDate` (end exclusive) and floats (no
  zone).
- `notes` carries the description; `location` is `{type, name, address}`: read as its name (else
  its address).
- Recurrence: a MASTER's `recurrenceRule` (weekly, one day) becomes an RRULE value; an EXCEPTION
  names its MASTER (`recurringEventId`) and its `originalStart`.
- calsync's own data sits in `extendedFields.namespaces["@calsync/sync"]`: `managedBy`,
  `provider` (the tag), `marker` and the create's `idempotencyKey`. The effective
  `externalCalendarOverrides` come from `@calsync/externalCalendarOverrides` on the session, else
  on its schedule (docs/wix.md, "Sandbox choices").
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync.event import (
    CanonicalEvent,
    EventStatus,
    ExternalCalendarOverrides,
    Moment,
    Recurrence,
    Transparency,
)
from sync.mapping import effective_overrides
from sync.snapshot import RemoteEvent

SYNC_NAMESPACE = "@calsync/sync"
OVERRIDES_NAMESPACE = "@calsync/externalCalendarOverrides"
MANAGED_BY = "calsync"
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_TITLE, MAX_NOTES = 200, 5000
BLANK_TITLE = "Busy"  # Wix titles are 1-200 characters


class MalformedEvent(ValueError):
    """Wix sent an event calsync cannot read."""


# -- reading ------------------------------------------------------------------------------


def namespace(entity: dict[str, Any], name: str) -> dict[str, Any]:
    extended = entity.get("extendedFields") or {}
    found = (extended.get("namespaces") or {}).get(name) if isinstance(extended, dict) else None
    return found if isinstance(found, dict) else {}


def calsync_data(entity: dict[str, Any]) -> dict[str, Any]:
    """calsync's namespace on an event it wrote, else {}."""
    data = namespace(entity, SYNC_NAMESPACE)
    return data if data.get("managedBy") == MANAGED_BY else {}


def overrides_of(entity: dict[str, Any]) -> ExternalCalendarOverrides | None:
    """The `externalCalendarOverrides` set on a session or a schedule itself."""
    data = namespace(entity, OVERRIDES_NAMESPACE)
    title, description = data.get("title"), data.get("description")
    if not isinstance(title, str) and not isinstance(description, str):
        return None
    return ExternalCalendarOverrides(
        title=title if isinstance(title, str) else None,
        description=description if isinstance(description, str) else None,
    )


def remote_event(
    doc: dict[str, Any], schedule_overrides: ExternalCalendarOverrides | None
) -> RemoteEvent:
    """A Wix event as calsync sees it: ours (a block) carries marker and tag; a session its
    effective overrides. Cancellation is the caller's to judge (tombstone or occurrence)."""
    ours = calsync_data(doc)
    overrides = None if ours else effective_overrides(overrides_of(doc), schedule_overrides)
    return RemoteEvent(
        id=str(doc["id"]),
        version=str(doc["revision"]) if doc.get("revision") is not None else None,
        event=canonical_event(doc),
        modified=_timestamp(doc.get("updatedDate")),
        marker=ours.get("marker") if isinstance(ours.get("marker"), str) else None,
        tag=ours.get("provider") if isinstance(ours.get("provider"), str) else None,
        overrides=overrides,
    )


def canonical_event(doc: dict[str, Any]) -> CanonicalEvent:
    try:
        all_day = bool(doc.get("allDay", False))
        zone = str(doc.get("timeZone") or doc["start"].get("timeZone") or "UTC")
        start, end = moment(doc["start"], all_day), moment(doc["end"], all_day)
        return CanonicalEvent(
            title=str(doc.get("title") or ""),
            start=start,
            end=end,
            description=str(doc.get("notes") or ""),
            location=location_text(doc.get("location")),
            all_day=all_day,
            time_zone=None if all_day else zone,
            status=EventStatus.CANCELLED
            if doc.get("status") == "CANCELLED"
            else EventStatus.CONFIRMED,
            transparency=Transparency.FREE
            if doc.get("transparency") == "FREE"
            else Transparency.BUSY,
            recurrence=_recurrence(doc, start, zone, all_day),
        )
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as error:
        raise MalformedEvent(f"wix event {doc.get('id')!r}: {error}") from None


def moment(zoned: dict[str, Any], all_day: bool) -> Moment:
    """A ZonedDate as a date (all-day) or an aware datetime in its own zone."""
    if all_day:
        return datetime.strptime(str(zoned["localDate"]), LOCAL_FORMAT).date()
    zone = ZoneInfo(str(zoned.get("timeZone") or "UTC"))
    if zoned.get("utcDate"):
        instant = datetime.fromisoformat(str(zoned["utcDate"]).replace("Z", "+00:00"))
        return instant.astimezone(zone)
    return datetime.strptime(str(zoned["localDate"]), LOCAL_FORMAT).replace(tzinfo=zone)


def location_text(location: Any) -> str:
    if not isinstance(location, dict):
        return ""
    name, address = location.get("name"), location.get("address")
    if isinstance(name, str) and name:
        return name
    if isinstance(address, dict):
        address = address.get("formattedAddress") or address.get("formatted")
    return address if isinstance(address, str) else ""


def _recurrence(doc: dict[str, Any], start: Moment, zone: str, all_day: bool) -> Recurrence | None:
    kind = doc.get("recurrenceType")
    if kind == "MASTER" and isinstance(doc.get("recurrenceRule"), dict):
        return Recurrence(rule=rrule_of(doc["recurrenceRule"], start, zone, all_day))
    if kind in ("EXCEPTION", "INSTANCE") and doc.get("recurringEventId"):
        original = doc.get("originalStart")
        return Recurrence(
            series_id=str(doc["recurringEventId"]),
            original_start=moment(original, all_day) if isinstance(original, dict) else start,
        )
    return None


def rrule_of(rule: dict[str, Any], start: Moment, zone: str, all_day: bool) -> str:
    """Wix's weekly rule as an RRULE value, e.g. `FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;UNTIL=...`.

    Wix's `until` includes its whole local day: UNTIL is that day's last second in UTC (a date
    for all-day series)."""
    days = rule.get("days") or [WEEKDAYS[start.weekday()]]
    parts = ["FREQ=WEEKLY"]
    interval = int(rule.get("interval") or 1)
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    parts.append("BYDAY=" + ",".join(RRULE_DAYS[WEEKDAYS.index(day)] for day in days))
    until = rule.get("until")
    if isinstance(until, dict) and until.get("localDate"):
        last_day = datetime.strptime(str(until["localDate"]), LOCAL_FORMAT).date()
        if all_day:
            parts.append(f"UNTIL={last_day:%Y%m%d}")
        else:
            local_end = datetime.combine(last_day, time(23, 59, 59), ZoneInfo(zone))
            parts.append(f"UNTIL={local_end.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    return ";".join(parts)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
