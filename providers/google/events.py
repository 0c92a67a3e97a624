"""Google Calendar events and calsync's canonical events, both ways.

Two readings of one Google event:
- series form, for events calsync made (they carry the marker): a recurring event is a master
  with its RRULE, a changed occurrence an exception naming the master and its original start;
- expanded form, for everyone else's events: every occurrence is a standalone event whose id is
  Google's instance id (`<series id>_<original start>`), stable across edits of the occurrence.

Ids calsync chooses are base32hex (the only alphabet Google accepts for client ids), derived
from the idempotency key, so a retried insert meets its first attempt as a 409.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.unreadable import read_or_unreadable
from sync.event import CanonicalEvent, EventStatus, Moment, Recurrence, Transparency
from sync.snapshot import RemoteEvent

MARKER_KEY = "calsyncMarker"  # Google drops extended property keys over 44 characters
Resource = dict[str, Any]


# -- ids -------------------------------------------------------------------------------------


def event_id_for(idempotency_key: str) -> str:
    """A valid Google event id (base32hex, 52 characters) derived from the key."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def instance_id(series_id: str, original_start: Moment) -> str:
    """Google's id for one occurrence: the start in UTC basic format, or the date if all-day."""
    if isinstance(original_start, datetime):
        return f"{series_id}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{series_id}_{original_start:%Y%m%d}"


def is_instance_id(event_id: str) -> bool:
    """Client-chosen and series ids are base32hex; only instance ids contain `_`."""
    return "_" in event_id


# -- reading ---------------------------------------------------------------------------------


def marker_of(resource: Resource) -> str | None:
    private = (resource.get("extendedProperties") or {}).get("private") or {}
    value = private.get(MARKER_KEY)
    return None if value is None else str(value)


def is_cancelled(resource: Resource) -> bool:
    return resource.get("status") == "cancelled"


def has_details(resource: Resource) -> bool:
    """Deleted entries may come as a stub with little more than the id. A live entry is never
    a stub: if it lacks its times, it is unreadable, not deleted."""
    return "start" in resource or not is_cancelled(resource)


def series_of(resource: Resource) -> str | None:
    parent = resource.get("recurringEventId")
    return None if parent is None else str(parent)


def original_start(resource: Resource) -> Moment | None:
    original = resource.get("originalStartTime")
    return None if not original else _moment(original)


def series_form(resource: Resource) -> RemoteEvent:
    """One of our events: masters keep their rule, exceptions name their series."""
    return read_or_unreadable(_id(resource), _etag(resource), lambda: _series_form(resource))


def _series_form(resource: Resource) -> RemoteEvent:
    parent = series_of(resource)
    if is_cancelled(resource) and parent is None:
        return _gone(resource)
    recurrence: Recurrence | None = None
    if parent is not None:
        recurrence = Recurrence(series_id=parent, original_start=original_start(resource))
    else:
        rule = _rrule(resource)
        recurrence = Recurrence(rule=rule) if rule else None
    return _remote(resource, recurrence)


def expanded_form(resource: Resource) -> RemoteEvent:
    """Someone else's event or occurrence, standalone; a cancelled one is a deletion."""
    if is_cancelled(resource):
        return _gone(resource)
    return read_or_unreadable(_id(resource), _etag(resource), lambda: _remote(resource, None))


def _id(resource: Resource) -> str:
    return str(resource["id"])


def _etag(resource: Resource) -> str | None:
    etag = resource.get("etag")
    return None if etag is None else str(etag)


def _gone(resource: Resource) -> RemoteEvent:
    return RemoteEvent.gone(_id(resource), _etag(resource))


def _remote(resource: Resource, recurrence: Recurrence | None) -> RemoteEvent:
    return RemoteEvent(
        id=_id(resource),
        version=_etag(resource),
        event=canonical(resource, recurrence),
        modified=_timestamp(resource.get("updated")),
        marker=marker_of(resource),
    )


def canonical(resource: Resource, recurrence: Recurrence | None) -> CanonicalEvent:
    start_value, end_value = _times(resource)
    start, end = _moment(start_value), _moment(end_value)
    all_day = not isinstance(start, datetime)
    if isinstance(end, datetime) is all_day or end < start:
        end = start  # malformed times: keep the event readable rather than lose it
    return CanonicalEvent(
        title=str(resource.get("summary") or ""),
        start=start,
        end=end,
        description=str(resource.get("description") or ""),
        location=str(resource.get("location") or ""),
        all_day=all_day,
        time_zone=None if all_day else start_value.get("timeZone") or None,
        status=EventStatus.CANCELLED if is_cancelled(resource) else EventStatus.CONFIRMED,
        transparency=(
            Transparency.FREE
            if resource.get("transparency") == "transparent"
            else Transparency.BUSY
        ),
        recurrence=recurrence,
        declined=declined_by_owner(resource),
    )


def declined_by_owner(resource: Resource) -> bool:
    """The calendar's owner is among the attendees (Google marks that entry `self`) and
    declined. Tentative (`tentative`) and unanswered (`needsAction`) invitations still block."""
    for attendee in resource.get("attendees") or ():
        if isinstance(attendee, dict) and attendee.get("self") is True:
            return attendee.get("responseStatus") == "declined"
    return False


def _times(resource: Resource) -> tuple[dict[str, Any], dict[str, Any]]:
    """A live event has both (KeyError names the one missing); a cancelled one may be a stub,
    timed by its original start."""
    if not is_cancelled(resource):
        return resource["start"], resource["end"]
    start = resource.get("start") or resource.get("originalStartTime") or {}
    return start, resource.get("end") or start


def _rrule(resource: Resource) -> str | None:
    """The RRULE value of a master (other lines, EXDATE say, are Google-side detail)."""
    for line in resource.get("recurrence") or ():
        name, _, value = str(line).partition(":")
        if name.split(";")[0].strip().upper() == "RRULE":
            return value.strip()
    return None


def _moment(value: dict[str, Any]) -> Moment:
    if value.get("date"):
        return date.fromisoformat(str(value["date"]))
    moment = datetime.fromisoformat(str(value["dateTime"]))
    zone = _zone(value.get("timeZone"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone or UTC)
    return moment.astimezone(zone) if zone else moment


def _zone(name: Any) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value))


# -- writing ---------------------------------------------------------------------------------


def event_body(event: CanonicalEvent, *, instance: bool = False) -> Resource:
    """The fields calsync owns, as an insert or patch body. An occurrence (`instance`) carries
    no recurrence; otherwise `recurrence` is always present (None clears it in a patch)."""
    rule = event.recurrence.rule if event.recurrence else None
    body: Resource = {
        "summary": event.title,
        "description": event.description,
        "location": event.location,
        "start": _event_datetime(event.start, event.time_zone, recurring=bool(rule)),
        "end": _event_datetime(event.end, event.time_zone, recurring=bool(rule)),
        "status": "cancelled" if event.status is EventStatus.CANCELLED else "confirmed",
        "transparency": "transparent" if event.transparency is Transparency.FREE else "opaque",
    }
    if not instance:
        body["recurrence"] = [f"RRULE:{rule}"] if rule else None
    return body


def marker_body(marker: str) -> Resource:
    return {"extendedProperties": {"private": {MARKER_KEY: marker}}}


def _event_datetime(moment: Moment, time_zone: str | None, *, recurring: bool) -> Resource:
    if not isinstance(moment, datetime):
        return {"date": moment.isoformat()}
    value: Resource = {"dateTime": moment.isoformat()}
    zone = time_zone
    if zone is None and recurring:
        # Google expands a series in its start's zone, so it needs one.
        zone = _zone_name(moment) or "UTC"
    if zone is not None:
        value["timeZone"] = zone
    return value


def _zone_name(moment: datetime) -> str | None:
    return moment.tzinfo.key if isinstance(moment.tzinfo, ZoneInfo) else None
