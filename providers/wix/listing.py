"""Reading one Wix schedule: its window, its changes since a cursor, single events.

What is listed: the schedule's NONE, MASTER and EXCEPTION events. A MASTER is a series (its
INSTANCEs are unchanged occurrences that the series covers); an EXCEPTION is one occurrence, a
cancelled one with status CANCELLED. A cancelled single event or MASTER is a deletion, and so are
the EXCEPTIONs cancelled along with their MASTER. Sessions carry their effective
`externalCalendarOverrides`; calsync's blocks their marker and tag (`providers.wix.events`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.base import ChangePage, SyncWindow
from providers.errors import NotFound, PermanentError, PermanentReason
from providers.wix.events import MalformedEvent, calsync_data, moment, overrides_of, remote_event
from providers.wix.http import Clock, WixInstance
from providers.wix.query import (
    BOTH_STATUSES,
    WIDE_FROM,
    WIDE_TO,
    ChangeCursor,
    events_query,
    query_all,
    wix_timestamp,
)
from sync.event import ExternalCalendarOverrides, as_instant
from sync.snapshot import RemoteEvent

EVENTS_PATH = "/calendar/v3/events"
KEY_PATH = "extendedFields.namespaces.@calsync/sync.idempotencyKey"


class ScheduleReader:
    def __init__(
        self,
        api: WixInstance,
        schedule_id: str,
        *,
        clock: Clock,
        page_size: int = 100,
        change_overlap: timedelta = timedelta(seconds=60),
    ) -> None:
        self.api = api
        self.schedule_id = schedule_id
        self.clock = clock
        self.page_size = page_size
        self.change_overlap = change_overlap

    def changes(self, cursor: str | None, window: SyncWindow) -> ChangePage:
        """The window (no cursor), or every event of the schedule updated since the cursor."""
        started = self.clock()
        previous = None if cursor is None else ChangeCursor.decode(cursor, self.schedule_id)
        schedule = self.schedule()
        revision, overrides = str(schedule.get("revision", "")), overrides_of(schedule)
        since = wix_timestamp(started - self.change_overlap)
        if previous is None:
            listed = self.window(window.start, window.end, overrides)
            page_cursor = ChangeCursor(self.schedule_id, since, revision)
            return ChangePage(tuple(listed), page_cursor.encode(), complete=True)
        flt = {"scheduleId": self.schedule_id, "status": BOTH_STATUSES,
               "updatedDate": {"$gte": previous.since}}  # fmt: skip
        request = events_query(WIDE_FROM, WIDE_TO, flt, limit=self.page_size)
        changes = self._classify(list(query_all(self.api, request)), overrides, tombstones=True)
        if previous.schedule_revision != revision:  # overrides may have changed for all
            seen = {change.id for change in changes}
            listed = self.window(window.start, window.end, overrides)
            changes += [item for item in listed if item.id not in seen]
        next_cursor = ChangeCursor(self.schedule_id, max(since, previous.since), revision)
        return ChangePage(tuple(changes), next_cursor.encode(), complete=False)

    def window(
        self, start: datetime, end: datetime, overrides: ExternalCalendarOverrides | None
    ) -> list[RemoteEvent]:
        """Live events overlapping the window, with the cancelled occurrences of live series."""
        flt = {"scheduleId": self.schedule_id,
               "$or": [{"status": "CONFIRMED"}, {"recurrenceType": "EXCEPTION"}]}  # fmt: skip
        docs = list(query_all(self.api, events_query(start, end, flt, limit=self.page_size)))
        return self._classify(docs, overrides, tombstones=False)

    def get(self, event_id: str) -> RemoteEvent:
        doc = self.event(event_id)
        if doc.get("status") == "CANCELLED" and not self.is_cancelled_occurrence(doc):
            return RemoteEvent.gone(event_id, revision_of(doc))
        return self.remote(doc)

    def schedule(self) -> dict[str, Any]:
        path = f"/calendar/v3/schedules/{quote(self.schedule_id, safe='')}"
        schedule: dict[str, Any] = self.api.call("GET", path)["schedule"]
        return schedule

    def event(self, event_id: str) -> dict[str, Any]:
        """An event of this schedule as Wix holds it (an id of another schedule is unknown)."""
        answer = self.api.call("GET", f"{EVENTS_PATH}/{quote(event_id, safe='')}")
        doc: dict[str, Any] = answer["event"]
        if doc.get("scheduleId") != self.schedule_id:
            raise NotFound(f"wix event {event_id} is not on this schedule")
        return doc

    def remote(self, doc: dict[str, Any]) -> RemoteEvent:
        """One event; a session gets its schedule's overrides (one more call)."""
        overrides = None if calsync_data(doc) else overrides_of(self.schedule())
        return mapped(doc, overrides)

    def is_cancelled_occurrence(
        self, doc: dict[str, Any], masters: dict[str, bool] | None = None
    ) -> bool:
        """A cancelled EXCEPTION of a live series; one of a cancelled series went with it.
        `masters` caches whether a series is live, by MASTER id."""
        masters = {} if masters is None else masters
        master_id = doc.get("recurringEventId")
        if doc.get("recurrenceType") not in ("EXCEPTION", "INSTANCE") or not master_id:
            return False
        if master_id not in masters:
            try:
                masters[master_id] = self.event(master_id).get("status") == "CONFIRMED"
            except NotFound:
                masters[master_id] = False
        return masters[master_id]

    def created_with(self, key: str) -> dict[str, Any] | None:
        """The live single event or series an earlier create with `key` made."""
        return self.created_with_keys([key]).get(key)

    def created_with_keys(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The live single events or series earlier creates with `keys` made, by key."""
        flt = {"scheduleId": self.schedule_id, KEY_PATH: {"$in": list(keys)},
               "status": "CONFIRMED"}  # fmt: skip
        request = events_query(WIDE_FROM, WIDE_TO, flt, ("NONE", "MASTER"), self.page_size)
        found: dict[str, dict[str, Any]] = {}
        for doc in query_all(self.api, request):
            found.setdefault(str(calsync_data(doc).get("idempotencyKey")), doc)
        return found

    def events(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """This schedule's single events, series and exceptions among `event_ids`, cancelled
        ones included, by id. INSTANCEs are not listed (`event` reads one)."""
        flt = {"scheduleId": self.schedule_id, "id": {"$in": list(event_ids)},
               "status": BOTH_STATUSES}  # fmt: skip
        request = events_query(WIDE_FROM, WIDE_TO, flt, limit=self.page_size)
        return {str(doc["id"]): doc for doc in query_all(self.api, request)}

    def occurrence(self, series_id: str, original: date | datetime) -> dict[str, Any] | None:
        """The EXCEPTION or INSTANCE of `series_id` whose original start is `original`."""
        flt: dict[str, Any] = {"recurringEventId": series_id, "status": BOTH_STATUSES}
        exceptions = events_query(WIDE_FROM, WIDE_TO, flt, ("EXCEPTION",), self.page_size)
        at = as_instant(original)
        near = (at - timedelta(days=1), at + timedelta(days=2))  # all-day: any zone's day
        instances = events_query(*near, {"recurringEventId": series_id}, ("INSTANCE",),
                                 self.page_size)  # fmt: skip
        for request in (exceptions, instances):
            for doc in query_all(self.api, request):
                if _original_start(doc) == original:
                    return doc
        return None

    def _classify(
        self,
        docs: list[dict[str, Any]],
        overrides: ExternalCalendarOverrides | None,
        *,
        tombstones: bool,
    ) -> list[RemoteEvent]:
        masters = {d["id"]: d.get("status") == "CONFIRMED" for d in docs
                   if d.get("recurrenceType") == "MASTER"}  # fmt: skip
        found: list[RemoteEvent] = []
        for doc in docs:
            if doc.get("status") != "CANCELLED" or self.is_cancelled_occurrence(doc, masters):
                found.append(mapped(doc, overrides))
            elif tombstones:
                found.append(RemoteEvent.gone(str(doc["id"]), revision_of(doc)))
        return found


def mapped(doc: dict[str, Any], overrides: ExternalCalendarOverrides | None) -> RemoteEvent:
    try:
        return remote_event(doc, overrides)
    except MalformedEvent as error:
        raise PermanentError(PermanentReason.INVALID_EVENT, str(error)) from None


def revision_of(doc: dict[str, Any]) -> str:
    return str(doc.get("revision", ""))


def _original_start(doc: dict[str, Any]) -> date | datetime | None:
    original = doc.get("originalStart")
    if not isinstance(original, dict):
        return None
    found = moment(original, bool(doc.get("allDay")))
    return found.astimezone(UTC) if isinstance(found, datetime) else found
