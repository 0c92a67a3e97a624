"""Calendar V3 event semantics: revisions, cancellation, and recurrence (MASTER/INSTANCE/EXCEPTION).

Not thread-safe on its own: `WixState` holds the lock. Every operation returns the `Change`s it made
so the caller can announce them (webhooks are not sent for INSTANCE events, and INSTANCEs are never
stored: they are generated from their MASTER whenever they are read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.wix.errors import WixError, invalid, not_found
from sandbox.wix.model import (
    EVENT_TYPES,
    WRITABLE_FIELDS,
    Actor,
    Event,
    EventFields,
    Schedule,
    choice,
    editable_json,
    new_id,
    parse_fields,
)
from sandbox.wix.recurrence import instance_id, is_occurrence, occurrences, split_instance_id
from sandbox.wix.zoned import from_utc, to_utc


@dataclass(frozen=True)
class Change:
    slug: str  # "created" | "updated" | "cancelled"
    event: Event


class Calendar:
    def __init__(self) -> None:
        self.events: dict[str, Event] = {}  # NONE, MASTER and EXCEPTION events
        self._exceptions: dict[str, dict[date, str]] = {}  # master id -> occurrence day -> id

    # reading

    def get(self, instance_id_: str, event_id: str) -> Event:
        stored = self.events.get(event_id)
        if stored is not None and stored.instance_id == instance_id_:
            return stored
        generated = self._generated_instance(instance_id_, event_id)
        if generated is None:
            raise not_found("event", event_id)
        return generated

    def window(
        self, instance_id_: str, start: datetime, end: datetime, kinds: Iterable[str]
    ) -> list[Event]:
        """A site's events overlapping the UTC window [start, end), of the kinds asked."""
        wanted = set(kinds)
        found: list[Event] = []
        for event in list(self.events.values()):
            if event.instance_id != instance_id_:
                continue
            if event.recurrence_type == "MASTER":
                found.extend(self._master_in_window(event, start, end, wanted))
            elif event.recurrence_type in wanted and _overlaps(event, start, end):
                found.append(event)
        return found

    # writing

    def create(
        self, schedule: Schedule, raw: dict[str, Any], actor: Actor, now: datetime
    ) -> Change:
        if raw.get("recurrenceType") in ("INSTANCE", "EXCEPTION"):
            raise invalid("event.recurrenceType", "INSTANCE and EXCEPTION events can't be created")
        fields = parse_fields(raw, schedule.time_zone, schedule.name)
        kind = "MASTER" if fields.rule is not None else "NONE"
        if kind == "MASTER":
            _refuse_past_master(fields, now)
        event = Event(
            id=new_id(),
            instance_id=schedule.instance_id,
            schedule_id=schedule.id,
            type=choice(raw.get("type", "DEFAULT"), EVENT_TYPES, "event.type"),
            status="CONFIRMED",
            fields=fields,
            recurrence_type=kind,
            app_id=actor.event_app_id(),
            revision=1,
            created=now,
            updated=now,
        )
        self._store(event)
        return Change("created", event)

    def update(
        self,
        current: Event,
        raw: dict[str, Any],
        paths: list[str] | None,
        *,
        require_revision: bool,
        now: datetime,
    ) -> tuple[Event, list[Change]]:
        """Apply `raw` (only `paths` if a fieldmask was given); returns the event to answer."""
        _refuse_cancelled(current)
        _check_revision(current, raw.get("revision"), required=require_revision)
        _refuse_immutable_changes(current, raw)
        fields = parse_fields(
            _overlay(current, raw, paths), current.time_zone, current.fields.title
        )
        if current.recurrence_type == "MASTER":
            return self._update_master(current, fields, now)
        if fields.rule is not None:
            raise invalid("event.recurrenceRule", "only a MASTER event has a recurrence rule")
        updated = self._revised(current, now, fields=fields, recurrence_type=_after_edit(current))
        return updated, [Change("updated", updated)]

    def cancel(self, current: Event, revision: Any, *, now: datetime) -> tuple[Event, list[Change]]:
        _refuse_cancelled(current)
        _check_revision(current, revision, required=False)
        cancelled = self._revised(
            current, now, status="CANCELLED", recurrence_type=_after_edit(current)
        )
        changes = [Change("updated", cancelled), Change("cancelled", cancelled)]
        if current.recurrence_type == "MASTER":
            for exception_id in list(self._exceptions.get(current.id, {}).values()):
                exception = self.events[exception_id]
                if exception.status != "CANCELLED":
                    gone = self._revised(exception, now, status="CANCELLED")
                    changes += [Change("updated", gone), Change("cancelled", gone)]
        return cancelled, changes

    # recurrence internals

    def _generated_instance(self, instance_id_: str, event_id: str) -> Event | None:
        parts = split_instance_id(event_id)
        if parts is None:
            return None
        master = self.events.get(parts[0])
        if master is None or master.instance_id != instance_id_ or not _is_live_master(master):
            return None
        assert master.fields.rule is not None
        original = parts[1]
        if not is_occurrence(master.start, master.fields.rule, original):
            return None
        if original.date() in self._exceptions.get(master.id, {}):
            return None
        return _instance_of(master, original)

    def _master_in_window(
        self, master: Event, start: datetime, end: datetime, wanted: set[str]
    ) -> list[Event]:
        found: list[Event] = []
        if "MASTER" in wanted and _series_overlaps(master, start, end):
            found.append(master)
        if "INSTANCE" not in wanted or not _is_live_master(master):
            return found
        assert master.fields.rule is not None
        duration = master.end - master.start
        # Local bounds widened by a day so DST offsets can't lose an occurrence; exact check below.
        not_before = from_utc(start, master.time_zone) - duration - timedelta(days=1)
        taken = self._exceptions.get(master.id, {})
        for local in occurrences(master.start, master.fields.rule, not_before=not_before):
            if to_utc(local, master.time_zone) >= end:
                break
            candidate = _instance_of(master, local)
            if local.date() not in taken and _overlaps(candidate, start, end):
                found.append(candidate)
        return found

    def _update_master(
        self, master: Event, fields: EventFields, now: datetime
    ) -> tuple[Event, list[Change]]:
        """Changes to a MASTER reach only future occurrences: split the series if some are past."""
        if fields.rule is None:
            raise invalid("event.recurrenceRule", "a MASTER event keeps its recurrence rule")
        assert master.fields.rule is not None
        first_future = next(
            (
                local
                for local in occurrences(master.start, master.fields.rule)
                if to_utc(local, master.time_zone) >= now
            ),
            None,
        )
        if first_future is None or first_future == master.start:
            if first_future is not None:
                _refuse_past_master(fields, now)
            updated = self._revised(master, now, fields=fields)
            return updated, [Change("updated", updated)]
        return self._split(master, fields, first_future, now)

    def _split(
        self, master: Event, fields: EventFields, split_at: datetime, now: datetime
    ) -> tuple[Event, list[Change]]:
        assert master.fields.rule is not None and fields.rule is not None
        ended = self._revised(
            master,
            now,
            fields=dataclasses.replace(
                master.fields, rule=master.fields.rule.ending_before(split_at.date())
            ),
        )
        shift = fields.start - master.start  # how the caller moved the series, if at all
        first = split_at + shift
        future = Event(
            id=new_id(),
            instance_id=master.instance_id,
            schedule_id=master.schedule_id,
            type=master.type,
            status="CONFIRMED",
            fields=dataclasses.replace(
                fields, start=first, end=first + (fields.end - fields.start)
            ),
            recurrence_type="MASTER",
            app_id=master.app_id,
            revision=1,
            created=now,
            updated=now,
        )
        self._store(future)
        changes = [Change("updated", ended), Change("created", future)]
        changes += self._move_exceptions(master.id, future.id, split_at.date(), now)
        return future, changes

    def _move_exceptions(
        self, old_master: str, new_master: str, from_day: date, now: datetime
    ) -> list[Change]:
        """EXCEPTIONs on or after the split belong to the new series from now on."""
        changes = []
        for day, exception_id in sorted(self._exceptions.get(old_master, {}).items()):
            if day >= from_day:
                moved = self._revised(self.events[exception_id], now, recurring_event_id=new_master)
                changes.append(Change("updated", moved))
        return changes

    def _revised(self, event: Event, now: datetime, **changes: Any) -> Event:
        """Store a changed copy with the next revision (INSTANCEs continue their MASTER's count)."""
        revised = dataclasses.replace(event, revision=event.revision + 1, updated=now, **changes)
        self._store(revised)
        return revised

    def _store(self, event: Event) -> None:
        previous = self.events.get(event.id)
        if previous is not None and previous.recurring_event_id is not None:
            self._exceptions.get(previous.recurring_event_id, {}).pop(_day(previous), None)
        self.events[event.id] = event
        if event.recurring_event_id is not None:
            self._exceptions.setdefault(event.recurring_event_id, {})[_day(event)] = event.id


def _day(event: Event) -> date:
    assert event.original_start is not None
    return event.original_start.date()


def _instance_of(master: Event, original: datetime) -> Event:
    duration = master.end - master.start
    return dataclasses.replace(
        master,
        id=instance_id(master.id, original),
        fields=dataclasses.replace(
            master.fields, start=original, end=original + duration, rule=None
        ),
        recurrence_type="INSTANCE",
        recurring_event_id=master.id,
        original_start=original,
    )


def _series_overlaps(master: Event, start: datetime, end: datetime) -> bool:
    rule = master.fields.rule
    if to_utc(master.start, master.time_zone) >= end:
        return False
    if rule is None or rule.until is None:
        return True
    last_end = datetime.combine(rule.until.date(), master.end.time()) + timedelta(days=1)
    return to_utc(last_end, master.time_zone) > start


def _is_live_master(event: Event) -> bool:
    return event.recurrence_type == "MASTER" and event.status == "CONFIRMED"


def _overlaps(event: Event, start: datetime, end: datetime) -> bool:
    return to_utc(event.start, event.time_zone) < end and to_utc(event.end, event.time_zone) > start


def _after_edit(event: Event) -> str:
    """Editing or cancelling an INSTANCE turns it into an EXCEPTION, permanently (Wix's rule)."""
    return "EXCEPTION" if event.recurrence_type == "INSTANCE" else event.recurrence_type


def _overlay(current: Event, raw: dict[str, Any], paths: list[str] | None) -> dict[str, Any]:
    merged = editable_json(current.fields)
    if paths is None:
        paths = [name for name in WRITABLE_FIELDS if name in raw]
    for path in paths:
        if path in raw:
            merged[path] = raw[path]
        else:
            merged.pop(path, None)  # named in the fieldmask but absent: cleared
    start = raw.get("start")
    if "timeZone" not in paths and isinstance(start, dict) and start.get("timeZone"):
        merged["timeZone"] = start["timeZone"]
    return merged


def _check_revision(event: Event, given: Any, *, required: bool) -> None:
    if given is None or given == "":
        if required:
            raise WixError(428, "REVISION_REQUIRED", "the event's current revision is required")
        return
    try:
        revision = int(str(given))
    except ValueError as exc:
        raise invalid("event.revision", "must be an integer or a string of one") from exc
    if revision != event.revision:
        raise WixError(
            409,
            "REVISION_MISMATCH",
            f"revision {revision} is stale; the event is at revision {event.revision}",
        )


def _refuse_cancelled(event: Event) -> None:
    if event.status == "CANCELLED":
        raise WixError(428, "EVENT_CANCELLED", f"event {event.id!r} is cancelled")


def _refuse_immutable_changes(event: Event, raw: dict[str, Any]) -> None:
    for name, value in (("scheduleId", event.schedule_id), ("type", event.type)):
        if raw.get(name) not in (None, value):
            raise invalid(f"event.{name}", f"{name} can't be changed after creation")


def _refuse_past_master(fields: EventFields, now: datetime) -> None:
    if fields.start.date() < from_utc(now, fields.time_zone).date():
        raise invalid("event.start", "a MASTER event can't start on a past date")
