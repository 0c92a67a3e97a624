"""Canonical events as plain JSON-ready dicts, for the links table and for JSON transports.

Instants keep their offset (the zone is its own field); dates are `YYYY-MM-DD`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sync.event import (
    CanonicalEvent,
    EventStatus,
    ExternalCalendarOverrides,
    Field,
    FieldValue,
    Moment,
    Recurrence,
    Transparency,
    When,
)
from sync.snapshot import RemoteEvent


def moment_to_text(moment: Moment) -> str:
    return moment.isoformat()


def moment_from_text(text: str) -> Moment:
    # A bare date has exactly ten characters; anything longer carries a time.
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def event_to_dict(event: CanonicalEvent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "start": moment_to_text(event.start),
        "end": moment_to_text(event.end),
        "allDay": event.all_day,
        "timeZone": event.time_zone,
        "status": event.status.value,
        "transparency": event.transparency.value,
    }
    if event.declined:
        data["declined"] = True
    if event.recurrence is not None:
        rec = event.recurrence
        data["recurrence"] = {
            "rule": rec.rule,
            "seriesId": rec.series_id,
            "originalStart": None
            if rec.original_start is None
            else moment_to_text(rec.original_start),
        }
    return data


def event_from_dict(data: dict[str, Any]) -> CanonicalEvent:
    rec = data.get("recurrence")
    recurrence = None
    if rec is not None:
        original = rec.get("originalStart")
        recurrence = Recurrence(
            rule=rec.get("rule"),
            series_id=rec.get("seriesId"),
            original_start=None if original is None else moment_from_text(original),
        )
    return CanonicalEvent(
        title=data["title"],
        start=moment_from_text(data["start"]),
        end=moment_from_text(data["end"]),
        description=data.get("description", ""),
        location=data.get("location", ""),
        all_day=bool(data.get("allDay", False)),
        time_zone=data.get("timeZone"),
        status=EventStatus(data.get("status", EventStatus.CONFIRMED.value)),
        transparency=Transparency(data.get("transparency", Transparency.BUSY.value)),
        recurrence=recurrence,
        declined=bool(data.get("declined", False)),
    )


def overrides_to_dict(overrides: ExternalCalendarOverrides | None) -> dict[str, Any] | None:
    if overrides is None:
        return None
    return {"title": overrides.title, "description": overrides.description}


def overrides_from_dict(data: dict[str, Any] | None) -> ExternalCalendarOverrides | None:
    if data is None:
        return None
    return ExternalCalendarOverrides(title=data.get("title"), description=data.get("description"))


def remote_to_dict(remote: RemoteEvent) -> dict[str, Any]:
    return {
        "id": remote.id,
        "version": remote.version,
        "event": None if remote.event is None else event_to_dict(remote.event),
        "modified": None if remote.modified is None else remote.modified.isoformat(),
        "marker": remote.marker,
        "tag": remote.tag,
        "overrides": overrides_to_dict(remote.overrides),
        "unreadable": remote.unreadable,
    }


def remote_from_dict(data: dict[str, Any]) -> RemoteEvent:
    modified = data.get("modified")
    return RemoteEvent(
        id=data["id"],
        version=data.get("version"),
        event=None if data.get("event") is None else event_from_dict(data["event"]),
        modified=None if modified is None else datetime.fromisoformat(modified),
        marker=data.get("marker"),
        tag=data.get("tag"),
        overrides=overrides_from_dict(data.get("overrides")),
        unreadable=data.get("unreadable"),
    )


def value_to_json(value: FieldValue | CanonicalEvent | None) -> Any:
    """One side's value in a conflict, as JSON that `value_from_json` reads back: a `when` as
    its four parts, a whole event (a deletion conflict) as `event_to_dict`."""
    if isinstance(value, CanonicalEvent):
        return event_to_dict(value)
    if isinstance(value, When):
        return {"start": moment_to_text(value.start), "end": moment_to_text(value.end),
                "allDay": value.all_day, "timeZone": value.time_zone}  # fmt: skip
    if isinstance(value, EventStatus | Transparency):
        return value.value
    return value


def value_from_json(field: Field, data: Any) -> FieldValue:
    """A field's value written by `value_to_json`; ValueError when it is not one."""
    try:
        if field is Field.WHEN:
            return When(moment_from_text(data["start"]), moment_from_text(data["end"]),
                        bool(data["allDay"]), data["timeZone"])  # fmt: skip
        if field is Field.STATUS:
            return EventStatus(data)
        if field is Field.TRANSPARENCY:
            return Transparency(data)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a value of {field.value}: {data!r}") from error
    if not isinstance(data, str):
        raise ValueError(f"not a value of {field.value}: {data!r}")
    return data
