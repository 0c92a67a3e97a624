"""The canonical event: the fields calsync syncs, as one frozen value, and its content hash.

Both sides are read into this shape and written from it. Two events are "the same content"
when their normal forms are equal: text trimmed (line endings unified), instants in UTC to the
second, the time zone kept as its own field. The hash covers exactly that normal form, so a
provider that re-renders an offset, appends a newline or drops microseconds does not look like
an edit (which would make two sides ping-pong).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property

Moment = datetime | date  # a datetime for timed events, a date for all-day ones
Normal = str | bool | None | tuple["Normal", ...]


class EventStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Transparency(StrEnum):
    BUSY = "busy"
    FREE = "free"


@dataclass(frozen=True)
class Recurrence:
    """Recurrence identity: a series carries its rule; an instance names its series and slot.

    `series_id` is the series master's id *on the same side*; the planner translates it through
    the series' link when it writes the instance to the other side.
    """

    rule: str | None = None
    series_id: str | None = None
    original_start: Moment | None = None

    @property
    def is_instance(self) -> bool:
        return self.series_id is not None


@dataclass(frozen=True)
class When:
    """Start, end, all-day flag and zone: merged as one field, as they only make sense together."""

    start: Moment
    end: Moment
    all_day: bool = False
    time_zone: str | None = None


@dataclass(frozen=True)
class ExternalCalendarOverrides:
    """Wix's `externalCalendarOverrides`: what the external copy shows instead of ours."""

    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class CanonicalEvent:
    title: str
    start: Moment
    end: Moment
    description: str = ""
    location: str = ""
    all_day: bool = False
    time_zone: str | None = None
    status: EventStatus = EventStatus.CONFIRMED
    transparency: Transparency = Transparency.BUSY
    recurrence: Recurrence | None = None
    # The calendar's owner is an attendee who declined (an invitation they said no to). Read
    # from their calendar, never written: it only decides whether the event blocks time.
    declined: bool = False

    def __post_init__(self) -> None:
        for moment in (self.start, self.end):
            _check_moment(moment, self.all_day)
        if as_instant(self.end) < as_instant(self.start):
            raise ValueError("an event cannot end before it starts")

    @property
    def when(self) -> When:
        return When(self.start, self.end, self.all_day, self.time_zone)

    @property
    def is_instance(self) -> bool:
        return self.recurrence is not None and self.recurrence.is_instance

    @cached_property
    def normal(self) -> dict[str, Normal]:
        # Computed once per value: the planner compares each event many times. (A frozen
        # dataclass still has a __dict__, which is where cached_property keeps it.)
        return normal_form(self)

    def with_when(self, when: When) -> CanonicalEvent:
        return replace(
            self, start=when.start, end=when.end, all_day=when.all_day, time_zone=when.time_zone
        )


class Field(StrEnum):
    """The units of the three-way merge (and of conflicts)."""

    TITLE = "title"
    DESCRIPTION = "description"
    LOCATION = "location"
    WHEN = "when"
    STATUS = "status"
    TRANSPARENCY = "transparency"


FieldValue = str | When | EventStatus | Transparency


def value_of(event: CanonicalEvent, field: Field) -> FieldValue:
    if field is Field.WHEN:
        return event.when
    value: FieldValue = getattr(event, field.value)
    return value


def with_value(event: CanonicalEvent, field: Field, value: FieldValue) -> CanonicalEvent:
    if field is Field.WHEN and isinstance(value, When):
        return event.with_when(value)
    if field is Field.STATUS and isinstance(value, EventStatus):
        return replace(event, status=value)
    if field is Field.TRANSPARENCY and isinstance(value, Transparency):
        return replace(event, transparency=value)
    if isinstance(value, str) and not isinstance(value, StrEnum):
        if field is Field.TITLE:
            return replace(event, title=value)
        if field is Field.DESCRIPTION:
            return replace(event, description=value)
        if field is Field.LOCATION:
            return replace(event, location=value)
    raise TypeError(f"{value!r} is not a value of {field.value}")


# Names of UTC: a timed event in UTC with no zone named is the same event.
_UTC_ZONES = frozenset({None, "", "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Zulu", "Etc/Zulu",
                        "Universal", "Etc/Universal"})  # fmt: skip


def normal_value(value: FieldValue) -> Normal:
    """The comparable form of one field value."""
    if isinstance(value, When):
        return (
            _normal_moment(value.start),
            _normal_moment(value.end),
            value.all_day,
            None if value.time_zone in _UTC_ZONES else value.time_zone,
        )
    if isinstance(value, StrEnum):
        return value.value
    return _normal_text(value)


def same_value(a: FieldValue, b: FieldValue) -> bool:
    return normal_value(a) == normal_value(b)


def normal_form(event: CanonicalEvent) -> dict[str, Normal]:
    form: dict[str, Normal] = {f.value: normal_value(value_of(event, f)) for f in Field}
    if event.declined:  # only then: the hashes of every other event stay as they were
        form["declined"] = True
    rec = event.recurrence
    form["recurrence"] = (
        None
        if rec is None
        else (
            _normal_text(rec.rule or ""),
            rec.series_id,
            None if rec.original_start is None else _normal_moment(rec.original_start),
        )
    )
    return form


def content_hash(event: CanonicalEvent) -> str:
    encoded = json.dumps(event.normal, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def same_content(a: CanonicalEvent, b: CanonicalEvent) -> bool:
    return a is b or a.normal == b.normal


def _normal_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _normal_moment(moment: Moment) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).replace(microsecond=0).isoformat()
    return moment.isoformat()


def as_instant(moment: Moment) -> datetime:
    """A moment as an aware datetime; a date counts from midnight UTC."""
    if isinstance(moment, datetime):
        return moment
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _check_moment(moment: Moment, all_day: bool) -> None:
    if all_day:
        if isinstance(moment, datetime):
            raise ValueError("an all-day event is dated, not timed")
    elif not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError("a timed event needs timezone-aware datetimes")
