"""What the sandbox stores (apps, sites, schedules, events) and how it reads and writes their JSON.

Field names follow Calendar V3. Where Wix's documentation leaves a field undocumented the choice is
written down in docs/wix.md, "Sandbox choices".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.wix.errors import invalid
from sandbox.wix.recurrence import WeeklyRule
from sandbox.wix.signing import SigningKey
from sandbox.wix.zoned import (
    adjusted,
    format_local,
    format_timestamp,
    from_utc,
    parse_local,
    parse_utc,
    zone,
    zoned_date,
)

BOOKINGS_APP_ID = "13d21c63-b5ec-5912-8397-c3a5ddb27a97"
BUSINESS_SCHEDULE_EXTERNAL_ID = "4e0579a5-491e-4e70-a872-d097eed6e520"
EVENT_TYPES = ("DEFAULT", "APPOINTMENT", "CLASS", "COURSE", "WORKING_HOURS")
RECURRENCE_TYPES = ("NONE", "MASTER", "INSTANCE", "EXCEPTION")
TRANSPARENCIES = ("BUSY", "FREE")
LOCATION_TYPES = ("BUSINESS", "CUSTOMER", "CUSTOM")
# extendedFields namespaces the sandbox gives meaning to (docs/wix.md, "Sandbox choices").
SYNC_NAMESPACE = "@calsync/sync"
OVERRIDES_NAMESPACE = "@calsync/externalCalendarOverrides"
PROVIDERS = ("google", "microsoft", "apple", "caldav")
# Fields a create or update may set; everything else in a request body is read-only and ignored.
WRITABLE_FIELDS = (
    "title",
    "start",
    "end",
    "timeZone",
    "allDay",
    "location",
    "notes",
    "transparency",
    "extendedFields",
    "recurrenceRule",
)
MAX_END = datetime(2100, 1, 1)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class App:
    app_id: str
    secret: str
    key: SigningKey
    webhook_url: str | None = None

    @property
    def public_key_pem(self) -> str:
        return self.key.public_key_pem


@dataclass
class Site:
    """One installation of an app on a Wix site: what Wix calls the app instance."""

    instance_id: str
    app_id: str
    time_zone: str
    installed: bool = True


@dataclass(frozen=True)
class Actor:
    """Who made a change: the site owner in the Wix dashboard, or an app through the API."""

    identity_type: str  # "WIX_USER" | "APP"
    actor_id: str

    @classmethod
    def wix_user(cls, user_id: str = "sandbox-wix-user") -> Actor:
        return cls("WIX_USER", user_id)

    @classmethod
    def app(cls, app_id: str) -> Actor:
        return cls("APP", app_id)

    def identity(self) -> dict[str, str]:
        key = "wixUserId" if self.identity_type == "WIX_USER" else "appId"
        return {"identityType": self.identity_type, key: self.actor_id}

    def event_app_id(self) -> str:
        """`appId` of events this actor creates: sessions made in the dashboard are Bookings'."""
        return self.actor_id if self.identity_type == "APP" else BOOKINGS_APP_ID


@dataclass
class Schedule:
    id: str
    instance_id: str
    external_id: str
    name: str
    time_zone: str
    created: datetime
    extended_fields: dict[str, Any] = field(default_factory=dict)
    app_id: str = BOOKINGS_APP_ID
    revision: int = 1
    updated: datetime | None = None
    owner_user_id: str | None = None  # the staff member's Wix user, if they have one

    def to_json(self) -> dict[str, Any]:
        # Wix's schedule holds at most one permission: the Wix user who may manage it.
        permissions = [{"identity": {"identityType": "WIX_USER", "wixUserId": self.owner_user_id},
                        "role": "WRITER"}] if self.owner_user_id else []  # fmt: skip
        return {
            "id": self.id,
            "externalId": self.external_id,
            "name": self.name,
            "status": "ACTIVE",
            "timeZone": self.time_zone,
            "businessTimeZoneEnabled": True,
            "defaultTitle": self.name,
            "appId": self.app_id,
            "permissions": permissions,
            "extendedFields": self.extended_fields,
            "revision": str(self.revision),
            "createdDate": format_timestamp(self.created),
            "updatedDate": format_timestamp(self.updated or self.created),
        }


@dataclass(frozen=True)
class EventFields:
    """The writable part of an event, validated."""

    title: str
    start: datetime
    end: datetime
    time_zone: str
    all_day: bool
    rule: WeeklyRule | None
    location: dict[str, Any] | None
    notes: str | None
    transparency: str
    extended_fields: dict[str, Any]


@dataclass(frozen=True)
class Event:
    """A stored event (NONE, MASTER, EXCEPTION) or a generated INSTANCE. Local times are naive."""

    id: str
    instance_id: str
    schedule_id: str
    type: str
    status: str
    fields: EventFields
    recurrence_type: str
    app_id: str
    revision: int
    created: datetime
    updated: datetime
    recurring_event_id: str | None = None
    original_start: datetime | None = None

    @property
    def start(self) -> datetime:
        return self.fields.start

    @property
    def end(self) -> datetime:
        return self.fields.end

    @property
    def time_zone(self) -> str:
        return self.fields.time_zone


def render_event(event: Event, schedule: Schedule, view_tz: str) -> dict[str, Any]:
    f = event.fields
    out: dict[str, Any] = {
        "id": event.id,
        "scheduleId": event.schedule_id,
        "externalScheduleId": schedule.external_id,
        "scheduleName": schedule.name,
        "type": event.type,
        "status": event.status,
        "title": f.title,
        "start": zoned_date(f.start, f.time_zone),
        "end": zoned_date(f.end, f.time_zone),
        "adjustedStart": adjusted(f.start, f.time_zone, view_tz),
        "adjustedEnd": adjusted(f.end, f.time_zone, view_tz),
        "timeZone": f.time_zone,
        "recurrenceType": event.recurrence_type,
        "allDay": f.all_day,
        "appId": event.app_id,
        "transparency": f.transparency,
        "extendedFields": f.extended_fields,
        "revision": str(event.revision),
        "createdDate": format_timestamp(event.created),
        "updatedDate": format_timestamp(event.updated),
    }
    if f.rule is not None:
        out["recurrenceRule"] = f.rule.to_json()
    if event.recurring_event_id is not None and event.original_start is not None:
        out["recurringEventId"] = event.recurring_event_id
        out["originalStart"] = zoned_date(event.original_start, f.time_zone)
    if f.location is not None:
        out["location"] = f.location
    if f.notes is not None:
        out["notes"] = f.notes
    return out


def editable_json(fields: EventFields) -> dict[str, Any]:
    """The writable fields in request shape, so an update can overlay a patch and re-validate."""
    out: dict[str, Any] = {
        "title": fields.title,
        "start": {"localDate": format_local(fields.start)},
        "end": {"localDate": format_local(fields.end)},
        "timeZone": fields.time_zone,
        "allDay": fields.all_day,
        "transparency": fields.transparency,
        "extendedFields": fields.extended_fields,
    }
    optional = {
        "recurrenceRule": fields.rule.to_json() if fields.rule else None,
        "location": fields.location,
        "notes": fields.notes,
    }
    out.update({key: value for key, value in optional.items() if value is not None})
    return out


def parse_fields(raw: dict[str, Any], default_tz: str, default_title: str) -> EventFields:
    tz = _time_zone(raw, default_tz)
    start = _local_of(raw.get("start"), tz, "event.start")
    end = _local_of(raw.get("end"), tz, "event.end")
    if end <= start:
        raise invalid("event.end", "must be after start")
    if end > MAX_END or end - start > timedelta(days=36500):
        raise invalid("event.end", "must be before 2100 and within 100 years of start")
    all_day = _boolean(raw.get("allDay", False), "event.allDay")
    if all_day and (start.time() != datetime.min.time() or end.time() != datetime.min.time()):
        raise invalid("event.allDay", "all-day events start and end at 00:00:00")
    rule_raw = raw.get("recurrenceRule")
    return EventFields(
        title=_title(raw.get("title"), default_title),
        start=start,
        end=end,
        time_zone=tz,
        all_day=all_day,
        rule=WeeklyRule.parse(rule_raw, start) if rule_raw is not None else None,
        location=_location(raw.get("location")),
        notes=_notes(raw.get("notes")),
        transparency=choice(raw.get("transparency", "BUSY"), TRANSPARENCIES, "event.transparency"),
        extended_fields=_extended_fields(raw.get("extendedFields")),
    )


def _time_zone(raw: dict[str, Any], default_tz: str) -> str:
    """`timeZone` wins, then `start.timeZone`, then the schedule's zone."""
    start = raw.get("start")
    start_tz = start.get("timeZone") if isinstance(start, dict) else None
    name = raw.get("timeZone") or start_tz or default_tz
    zone(name, "event.timeZone")
    return str(name)


def _local_of(value: Any, tz: str, field_name: str) -> datetime:
    """A ZonedDate in: `localDate` is used when present, else `utcDate` is shown in `tz`."""
    if not isinstance(value, dict):
        raise invalid(field_name, "required: {localDate}")
    if value.get("localDate") is not None:
        return parse_local(value["localDate"], f"{field_name}.localDate")
    if value.get("utcDate") is not None:
        return from_utc(parse_utc(value["utcDate"], f"{field_name}.utcDate"), tz)
    raise invalid(f"{field_name}.localDate", "required")


def _title(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise invalid("event.title", "must be 1 to 200 characters")
    return value


def _notes(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 5000:
        raise invalid("event.notes", "must be at most 5000 characters")
    return value or None


def _location(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("event.location", "must be an object {type, name, address}")
    if "type" in value:
        choice(value["type"], LOCATION_TYPES, "event.location.type")
    return dict(value)


def _extended_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    namespaces = value.get("namespaces", {}) if isinstance(value, dict) else None
    if not isinstance(namespaces, dict) or not all(
        isinstance(v, dict) for v in namespaces.values()
    ):
        raise invalid("event.extendedFields", "must be {namespaces: {<namespace>: {...}}}")
    return {"namespaces": {name: dict(data) for name, data in namespaces.items()}}


def _boolean(value: Any, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field_name, "must be a boolean")
    return value


def choice(value: Any, allowed: tuple[str, ...], field_name: str) -> str:
    if value not in allowed:
        raise invalid(field_name, f"must be one of {', '.join(allowed)}")
    return str(value)


def effective_overrides(event: dict[str, Any], schedule: dict[str, Any]) -> dict[str, str]:
    """externalCalendarOverrides of a session: its own values, else its schedule's, per field."""

    def read(entity: dict[str, Any]) -> dict[str, Any]:
        namespaces = (entity.get("extendedFields") or {}).get("namespaces") or {}
        return namespaces.get(OVERRIDES_NAMESPACE) or {}

    own, inherited = read(event), read(schedule)
    merged = {key: own.get(key) or inherited.get(key) for key in ("title", "description")}
    return {key: value for key, value in merged.items() if value}
