"""What one calendar object resource (one UID) lists as, and how one of its slots is written.

Ids: a resource is named by the last segment of its href (`abc.ics`); a slot of a recurring
resource by `<name>#<key>`, the key being the slot's original start (`moment_key`).

- calsync's own events (the master carries `X-CALSYNC-MARKER`) are listed however far ahead
  they are (a copy moved beyond the window is an edit of the copy); a single one only until
  it ends before the window (then it is gone, with its session). A series is listed in series
  form: the master (id = name, with its rule) and one exception per RECURRENCE-ID override or
  EXDATE (an EXDATE is a cancelled exception without a marker).
  Exporting a cancelled occurrence writes an EXDATE on the master and drops that slot's
  override: clients hide an EXDATE, while some still show a STATUS:CANCELLED override.
- Anyone else's events: a single event if it overlaps the window; a recurring one expanded
  within the window, one standalone event per occurrence (moved ones at their new times,
  cancelled ones and EXDATEs left out).

Versions: a non-recurring resource's items carry the resource's ETag. One ETag covers every
component of a recurring resource, so writing one exception would make the If-Match of all
the others fail; their items carry a version of their own content instead (`c:` + hash of the
canonical fields and the marker), which is what `update` and `delete` compare against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import recurring_ical_events
from icalendar import Calendar, Component

from providers.base import SyncWindow
from providers.caldav.events import (
    MARKER,
    UnreadableEvent,
    event_of,
    exdates_of,
    fill,
    is_key,
    key_moment,
    marker_of,
    moment,
    moment_key,
    override_from,
    parse_calendar,
    rule_of,
    set_exdates,
    start_zone,
)
from sync.event import (
    CanonicalEvent,
    EventStatus,
    Moment,
    Recurrence,
    as_instant,
    content_hash,
)
from sync.link import Marker
from sync.snapshot import RemoteEvent

SEPARATOR = "#"
COMPONENT_VERSION = "c:"  # a version of one component, not an ETag


def item_id(name: str, key: str | None = None) -> str:
    return name if key is None else f"{name}{SEPARATOR}{key}"


def split_id(event_id: str) -> tuple[str, str | None]:
    name, sep, key = event_id.rpartition(SEPARATOR)
    if sep and name and is_key(key):
        return name, key
    return event_id, None


@dataclass
class Resource:
    name: str
    etag: str | None
    calendar: Calendar
    own_addresses: frozenset[str] = frozenset()  # the owner's, to read their answer to invitations
    master: Component | None = field(init=False)
    overrides: dict[str, Component] = field(init=False)

    def __post_init__(self) -> None:
        self.master, self.overrides = None, {}
        for component in self.calendar.walk("VEVENT"):
            if moment(component.get("DTSTART")) is None:
                raise UnreadableEvent(f"{self.name}: a VEVENT without a DTSTART")
            slot = moment(component.get("RECURRENCE-ID"))
            if slot is None:
                self.master = self.master or component
            else:
                self.overrides[moment_key(slot)] = component

    @classmethod
    def parse(
        cls, name: str, etag: str | None, text: str, own_addresses: frozenset[str] = frozenset()
    ) -> Resource:
        return cls(name, etag, parse_calendar(text), own_addresses)

    @property
    def ours(self) -> bool:
        return Marker.parse(marker_of(self.master)) is not None

    @property
    def recurring(self) -> bool:
        master = self.master
        return master is None or "RRULE" in master or "RDATE" in master or bool(self.overrides)

    def items(self, window: SyncWindow) -> list[RemoteEvent]:
        """What a listing shows of this resource (see the module doc)."""
        if not self.recurring:
            assert self.master is not None
            item = self._single()
            listed = _not_past(item.event, window) if self.ours else _overlaps(item.event, window)
            return [item] if listed else []
        if self.ours:
            return self._series()
        return self._occurrences(window)

    def item(self, key: str | None) -> RemoteEvent | None:
        """One item by its key (None: the resource itself), as `get` shows it; None if gone."""
        if key is None:
            if self.master is None:
                return None
            return self._single() if not self.recurring else self._master_item()
        if self.ours:
            return next((i for i in self._series() if i.id == item_id(self.name, key)), None)
        return self._occurrence(key)

    def _read(self, component: Component, recurrence: Recurrence | None = None) -> CanonicalEvent:
        return event_of(component, recurrence, self.own_addresses)

    # -- calsync's own series -------------------------------------------------------------

    def _single(self) -> RemoteEvent:
        assert self.master is not None
        marker = marker_of(self.master)
        return RemoteEvent(self.name, self.etag, self._read(self.master), marker=marker)

    def _master_item(self) -> RemoteEvent:
        assert self.master is not None
        rule = rule_of(self.master)
        recurrence = Recurrence(rule=rule) if rule else None
        return _versioned(self.name, self._read(self.master, recurrence), marker_of(self.master))

    def _series(self) -> list[RemoteEvent]:
        items = [self._master_item()] if self.master is not None else []
        for key, component in sorted(self.overrides.items()):
            slot = moment(component.get("RECURRENCE-ID"))
            recurrence = Recurrence(series_id=self.name, original_start=self._in_master_zone(slot))
            event = self._read(component, recurrence)
            items.append(_versioned(item_id(self.name, key), event, marker_of(component)))
        items.extend(self._cancelled_slots())
        return items

    def _cancelled_slots(self) -> list[RemoteEvent]:
        if self.master is None:
            return []
        base = self._read(self.master)
        items = []
        for slot in exdates_of(self.master):
            key = moment_key(slot)
            if key in self.overrides:
                continue
            start = self._in_master_zone(slot)
            assert start is not None
            recurrence = Recurrence(series_id=self.name, original_start=start)
            event = replace(_moved(base, start, recurrence), status=EventStatus.CANCELLED)
            items.append(_versioned(item_id(self.name, key), event, None))
        return items

    def _in_master_zone(self, slot: Moment | None) -> Moment | None:
        zone = None if self.master is None else start_zone(self.master)
        if isinstance(slot, datetime) and zone is not None:
            return slot.astimezone(zone)
        return slot

    # -- anyone else's series -------------------------------------------------------------

    def _occurrences(self, window: SyncWindow) -> list[RemoteEvent]:
        query = recurring_ical_events.of(self.calendar, skip_bad_series=False)
        found: dict[str, RemoteEvent] = {}
        for component in query.between(window.start, window.end):
            item = self._occurrence_item(component)
            if item is not None:
                found[item.id] = item
        return [found[i] for i in sorted(found)]

    def _occurrence(self, key: str) -> RemoteEvent | None:
        override = self.overrides.get(key)
        if override is not None:
            return self._occurrence_item(override)
        slot = key_moment(key)
        if self.master is None or key in {moment_key(m) for m in exdates_of(self.master)}:
            return None
        start = as_instant(slot) - timedelta(seconds=1)
        span = timedelta(days=1) if isinstance(slot, date) and not isinstance(slot, datetime) \
            else timedelta(seconds=2)  # fmt: skip
        query = recurring_ical_events.of(self.calendar, skip_bad_series=False)
        for component in query.between(start, start + span):
            item = self._occurrence_item(component)
            if item is not None and item.id == item_id(self.name, key):
                return item
        return None

    def _occurrence_item(self, component: Component) -> RemoteEvent | None:
        slot = moment(component.get("RECURRENCE-ID")) or moment(component.get("DTSTART"))
        if slot is None or str(component.get("STATUS", "")).upper() == "CANCELLED":
            return None
        event = self._read(component)
        return _versioned(item_id(self.name, moment_key(slot)), event, None)

    # -- writing one slot -----------------------------------------------------------------

    def write_slot(self, key: str, event: CanonicalEvent, marker: str | None = None) -> None:
        """Set the slot's override to `event` (made from the master if there is none); a
        cancelled occurrence becomes an EXDATE, the way calendar clients hide it."""
        if self.master is None:
            raise UnreadableEvent("a series without its master")
        if event.status is EventStatus.CANCELLED:
            self.remove_slot(key, exclude=True)
            return
        override = self.overrides.get(key)
        if override is None:
            slot = key_moment(key, start_zone(self.master))
            override = override_from(self.master, slot)
            self.calendar.add_component(override)
            self.overrides[key] = override
        fill(override, event)
        if marker:
            override.pop(MARKER, None)
            override.add(MARKER, marker)
        self._set_excluded(key, False)

    def remove_slot(self, key: str, *, exclude: bool) -> None:
        """Drop the slot's override; `exclude`: the occurrence goes too (EXDATE), else it
        is what the rule makes of it again."""
        override = self.overrides.pop(key, None)
        if override is not None:
            self.calendar.subcomponents.remove(override)
        self._set_excluded(key, exclude)

    def _set_excluded(self, key: str, excluded: bool) -> None:
        if self.master is None:
            return
        dates = {moment_key(m): m for m in exdates_of(self.master)}
        if excluded == (key in dates):
            return
        if excluded:
            dates[key] = key_moment(key, start_zone(self.master))
        else:
            dates.pop(key)
        set_exdates(self.master, list(dates.values()))


def slot_keys(items: list[RemoteEvent]) -> list[str]:
    """The slot keys of a resource's items (its occurrences or exceptions)."""
    return sorted(k for i in items if (k := split_id(i.id)[1]) is not None)


def _versioned(event_id: str, event: CanonicalEvent, marker: str | None) -> RemoteEvent:
    digest = hashlib.sha256(f"{content_hash(event)}\x1f{marker or ''}".encode()).hexdigest()
    return RemoteEvent(event_id, f"{COMPONENT_VERSION}{digest[:24]}", event, marker=marker)


def _moved(base: CanonicalEvent, start: Moment, recurrence: Recurrence) -> CanonicalEvent:
    """The master's event at another slot: what an occurrence the rule makes looks like."""
    if isinstance(start, datetime):
        end: Moment = start + (as_instant(base.end) - as_instant(base.start))
    else:
        end = start + max(timedelta(days=1), as_instant(base.end) - as_instant(base.start))
    return replace(base, start=start, end=end, recurrence=recurrence)


def _not_past(event: CanonicalEvent | None, window: SyncWindow) -> bool:
    if event is None:
        return False
    start, end = as_instant(event.start), as_instant(event.end)
    return end > window.start or start == end >= window.start


def _overlaps(event: CanonicalEvent | None, window: SyncWindow) -> bool:
    if event is None:
        return False
    start, end = as_instant(event.start), as_instant(event.end)
    return start < window.end and (end > window.start or (start == end >= window.start))
