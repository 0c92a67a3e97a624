"""One calendar's events: write semantics of insert/update/patch/delete.

Deleted events stay as tombstones (status `cancelled`, details kept, as on the organizer's calendar)
so incremental sync can report them and a re-used id still answers 409. Every change bumps the
calendar's change counter; an event remembers the counter value of its last change, which is what
sync tokens compare against. An instance of a recurring event exists only virtually until it is
changed; then it is stored as an exception with `recurringEventId` and `originalStartTime`.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .datetimes import rfc3339
from .errors import ApiError, condition_not_met, deleted, duplicate, not_found
from .recurrence import Occurrence, Series, split_instance_id
from .rules import check_event, check_event_id, normalise_extended_properties

SERVER_FIELDS = frozenset(
    {
        "kind",
        "etag",
        "id",
        "iCalUID",
        "created",
        "updated",
        "creator",
        "organizer",
        "htmlLink",
        "recurringEventId",
        "originalStartTime",
    }
)
_TIMING_FIELDS = ("start", "end", "recurrence")
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


@dataclass(frozen=True)
class Expansion:
    """How far unbounded series are expanded, and a cap per series against runaway rules."""

    horizon_days: int = 730
    max_instances: int = 5000


@dataclass
class StoredEvent:
    resource: dict[str, Any]
    change_seq: int
    order: int
    # Instances a series change made vanish: id -> (originalStartTime, change counter then).
    retired: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"

    @property
    def parent_id(self) -> str | None:
        return self.resource.get("recurringEventId")

    @property
    def is_series(self) -> bool:
        return bool(self.resource.get("recurrence")) and self.parent_id is None


class EventStore:
    def __init__(
        self,
        calendar_id: str,
        time_zone: str,
        etags: Callable[[], str],
        expansion: Callable[[], Expansion],
    ) -> None:
        self.calendar_id = calendar_id
        self.time_zone = time_zone
        self.events: dict[str, StoredEvent] = {}
        self.version = 0
        self.updated: datetime | None = None
        self._etags = etags
        self._expansion = expansion
        self._exceptions: dict[str, set[str]] = {}
        # A fault: event id -> the fields the API leaves out when it serves the event.
        self.damaged: dict[str, tuple[str, ...]] = {}

    # -- reads -------------------------------------------------------------------------------

    def get(self, event_id: str) -> dict[str, Any]:
        return self.served(self._current(event_id)[1])

    def served(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A copy of the event as the API serves it: without the fields a fault dropped."""
        dropped = self.damaged.get(resource["id"], ())
        served = {k: copy.deepcopy(v) for k, v in resource.items() if k not in dropped}
        _mark_self(served.get("attendees"), self.calendar_id)
        return served

    def exceptions(self, parent_id: str) -> list[StoredEvent]:
        return [self.events[i] for i in sorted(self._exceptions.get(parent_id, ()))]

    def series(self, resource: dict[str, Any]) -> Series:
        return Series(resource, self.time_zone)

    def expansion(self) -> Expansion:
        return self._expansion()

    # -- writes ------------------------------------------------------------------------------

    def insert(self, body: dict[str, Any], actor: str, now: datetime) -> dict[str, Any]:
        event_id = body.get("id")
        if event_id is not None:
            check_event_id(str(event_id))
            if event_id in self.events:
                raise duplicate()
        else:
            event_id = _new_event_id()
        resource = _writable(body)
        resource.update(self._server_fields(str(event_id), body, actor, now))
        resource["sequence"] = int(body.get("sequence") or 0)
        self._validate(resource)
        return self._store(None, resource, now)

    def update(
        self, event_id: str, body: dict[str, Any], now: datetime, if_match: str | None
    ) -> dict[str, Any]:
        stored, current = self._current(event_id)
        _check_if_match(current, if_match)
        resource = _writable(body)
        return self._rewrite(stored, current, resource, body.get("sequence"), now)

    def patch(
        self, event_id: str, body: dict[str, Any], now: datetime, if_match: str | None
    ) -> dict[str, Any]:
        stored, current = self._current(event_id)
        _check_if_match(current, if_match)
        resource = merge_patch(_writable(current), _writable(body, keep_none=True))
        return self._rewrite(stored, current, resource, body.get("sequence"), now)

    def delete(self, event_id: str, now: datetime, if_match: str | None) -> None:
        stored, current = self._current(event_id)
        if current.get("status") == "cancelled":
            raise deleted()
        _check_if_match(current, if_match)
        # The details stay (the organizer's copy keeps them); listings decide what to show.
        self._store(stored, {**copy.deepcopy(current), "status": "cancelled"}, now)

    def damage(self, event_id: str, drop: list[str], now: datetime) -> dict[str, Any]:
        """Serve the event without the fields in `drop` from now on (none: whole again). Its
        etag and `updated` change either way, so incremental listings report it; an instance
        of a series becomes an exception, as any change of one does."""
        stored, current = self._current(event_id)
        unknown = sorted(set(drop) - (set(current) - {"id"}))
        if unknown:
            raise ValueError(f"drop: the event has no field {unknown[0]!r} that can be dropped")
        if drop:
            self.damaged[event_id] = tuple(drop)
        else:
            self.damaged.pop(event_id, None)
        return self._store(stored, copy.deepcopy(current), now)

    # -- internals ---------------------------------------------------------------------------

    def _current(self, event_id: str) -> tuple[StoredEvent | None, dict[str, Any]]:
        stored = self.events.get(event_id)
        if stored is not None:
            return stored, stored.resource
        return None, self._virtual_instance(event_id)

    def _virtual_instance(self, event_id: str) -> dict[str, Any]:
        parts = split_instance_id(event_id)
        parent = self.events.get(parts[0]) if parts else None
        if parts is None or parent is None or not parent.is_series:
            raise not_found()
        series = self.series(parent.resource)
        occ = series.occurrence(parts[1])
        if occ is None:
            raise not_found()
        instance = render_instance(parent.resource, series, occ)
        if parent.cancelled:
            instance["status"] = "cancelled"
        return instance

    def _rewrite(
        self,
        stored: StoredEvent | None,
        current: dict[str, Any],
        resource: dict[str, Any],
        explicit_sequence: Any,
        now: datetime,
    ) -> dict[str, Any]:
        resource.update({k: current[k] for k in SERVER_FIELDS if k in current})
        resource.setdefault("status", "confirmed")
        resource.setdefault("reminders", {"useDefault": True})
        resource.setdefault("eventType", "default")
        resource["sequence"] = _next_sequence(current, resource, explicit_sequence)
        self._validate(resource)
        return self._store(stored, resource, now)

    def _validate(self, resource: dict[str, Any]) -> None:
        normalise_extended_properties(resource)
        check_event(resource, self.time_zone, instance="recurringEventId" in resource)

    def _store(
        self, stored: StoredEvent | None, resource: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        resource["updated"] = rfc3339(now)
        resource["etag"] = self._etags()
        seq = self._bump(now)
        if stored is None:
            stored = StoredEvent(resource, seq, order=len(self.events))
            self.events[resource["id"]] = stored
            if stored.parent_id:
                self._exceptions.setdefault(stored.parent_id, set()).add(resource["id"])
            previous: dict[str, Any] = {}
        else:
            previous, stored.resource, stored.change_seq = stored.resource, resource, seq
        self._follow_series_change(stored, previous, seq, now)
        return self.served(resource)

    def _follow_series_change(
        self, stored: StoredEvent, previous: dict[str, Any], seq: int, now: datetime
    ) -> None:
        """Keep instances consistent when a series is re-timed or cancelled."""
        if not previous or stored.parent_id:
            return  # a new event or an exception: no other instance is affected
        if not (previous.get("recurrence") or stored.is_series):
            return
        if stored.cancelled:
            self._cancel_exceptions(stored.resource["id"], seq, now)
            return
        if all(previous.get(k) == stored.resource.get(k) for k in _TIMING_FIELDS):
            return
        before = self._instance_starts(previous, now)
        after = self._instance_starts(stored.resource, now)
        for instance_id in after:
            stored.retired.pop(instance_id, None)
        for instance_id, original in before.items():
            if instance_id in after:
                continue
            exception = self.events.get(instance_id)
            if exception is None:
                stored.retired[instance_id] = (original, seq)
            elif not exception.cancelled:
                self._cancel(exception, seq, now)

    def _instance_starts(self, resource: dict[str, Any], now: datetime) -> dict[str, Any]:
        if not resource.get("recurrence") or resource.get("status") == "cancelled":
            return {}
        limits = self.expansion()
        series = self.series(resource)
        until = series.horizon(now, limits.horizon_days)
        return {
            f"{resource['id']}_{occ.suffix}": series.original_start(occ)
            for occ in series.between(None, until, limits.max_instances)
        }

    def _cancel_exceptions(self, parent_id: str, seq: int, now: datetime) -> None:
        for exception in self.exceptions(parent_id):
            if not exception.cancelled:
                self._cancel(exception, seq, now)

    def _cancel(self, stored: StoredEvent, seq: int, now: datetime) -> None:
        stored.resource = {**stored.resource, "status": "cancelled", "updated": rfc3339(now)}
        stored.resource["etag"] = self._etags()
        stored.change_seq = seq

    def _bump(self, now: datetime) -> int:
        self.version += 1
        self.updated = now
        return self.version

    def _server_fields(
        self, event_id: str, body: dict[str, Any], actor: str, now: datetime
    ) -> dict[str, Any]:
        eid = base64.urlsafe_b64encode(f"{event_id} {self.calendar_id}".encode()).decode()
        return {
            "kind": "calendar#event",
            "id": event_id,
            "status": body.get("status") or "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid=" + eid.rstrip("="),
            "created": rfc3339(now),
            "creator": {"email": actor},
            "organizer": {"email": self.calendar_id, "self": True},
            "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
            "reminders": body.get("reminders") or {"useDefault": True},
            "eventType": body.get("eventType") or "default",
        }


def render_instance(parent: dict[str, Any], series: Series, occ: Occurrence) -> dict[str, Any]:
    """A not-yet-changed instance: the series' fields at the occurrence's time."""
    instance = {k: copy.deepcopy(v) for k, v in parent.items() if k != "recurrence"}
    start, end = series.instance_times(occ)
    instance.update(
        id=f"{parent['id']}_{occ.suffix}",
        recurringEventId=parent["id"],
        originalStartTime=series.original_start(occ),
        start=start,
        end=end,
    )
    return instance


def _mark_self(attendees: Any, calendar_id: str) -> None:
    """`self` is read-only, Google's to say: it marks the attendee entry of the calendar the
    event is read from (its owner answers an invitation by patching that entry's
    `responseStatus`). Whatever a client sent in it is dropped."""
    for attendee in attendees if isinstance(attendees, list) else ():
        if isinstance(attendee, dict):
            attendee.pop("self", None)
            if str(attendee.get("email") or "").lower() == calendar_id.lower():
                attendee["self"] = True


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge key by key, `null` removes, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _writable(body: dict[str, Any], keep_none: bool = False) -> dict[str, Any]:
    return {
        k: copy.deepcopy(v)
        for k, v in body.items()
        if k not in SERVER_FIELDS and (keep_none or v is not None)
    }


def _check_if_match(current: dict[str, Any], if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", current.get("etag")):
        raise condition_not_met()


def _next_sequence(current: dict[str, Any], resource: dict[str, Any], explicit: Any) -> int:
    old = int(current.get("sequence") or 0)
    if explicit is not None:
        if int(explicit) < old:
            raise ApiError(
                400,
                "invalid",
                "Invalid sequence value. The specified sequence number is below the current "
                "sequence number of the resource.",
            )
        return int(explicit)
    changed = any(current.get(k) != resource.get(k) for k in _TIMING_FIELDS)
    return old + 1 if changed else old


def _new_event_id() -> str:
    return "".join(secrets.choice(_BASE32HEX) for _ in range(26))
