"""One Wix staff schedule behind `CalendarProvider`: sessions out, calsync's busy blocks in.

Reading is `providers.wix.listing`; this module writes.
- Version = `revision`. Update and cancel send it; Wix's 409 REVISION_MISMATCH is
  `PreconditionFailed`. Cancel is delete: a missing or already cancelled event counts as done.
- Creates are idempotent by lookup: Wix picks event ids, so the create's key is stored in
  calsync's namespace and a retried create finds the event by it instead of making another.
  The per-calendar lock makes calsync the only writer of that key, so lookup-then-create
  cannot race with itself.
- Creating an exception (an occurrence of a series) writes that occurrence: Wix turns the
  INSTANCE into an EXCEPTION that keeps its id.
- `write_many` sends consecutive creates, updates or cancels as Wix's bulk calls, each write
  keeping its single call's contract (see there); occurrences of a series go one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, cast
from urllib.parse import quote

from providers.base import (
    ChangePage,
    EventChange,
    EventRemoval,
    NewEvent,
    SyncWindow,
    Write,
    WriteOutcome,
)
from providers.errors import (
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    TransientError,
)
from providers.wix import bulk
from providers.wix.events import calsync_data, overrides_of
from providers.wix.fields import (
    changed_fields,
    content_fields,
    when_fields,
    with_calsync_data,
    wix_rule,
)
from providers.wix.http import Clock, WixAnswer, WixInstance
from providers.wix.listing import EVENTS_PATH, ScheduleReader, mapped, revision_of
from sync.event import CanonicalEvent, EventStatus, ExternalCalendarOverrides
from sync.snapshot import RemoteEvent

# An event as Wix answered it, not yet read as calsync's, or what became of a write already.
Landed = dict[str, Any] | WriteOutcome


class WixSchedule:
    write_concurrency = 1  # one write at a time

    def __init__(
        self,
        api: WixInstance,
        schedule_id: str,
        window: SyncWindow,
        provider_tag: str | None = None,
        *,
        clock: Clock,
        read_only: bool = False,
        page_size: int = 100,
        change_overlap: timedelta = timedelta(seconds=60),
    ) -> None:
        self.api = api
        self.schedule_id = schedule_id
        self.window = window
        self.provider_tag = provider_tag  # the tag of blocks created without an explicit one
        self._read_only = read_only
        self.reader = ScheduleReader(
            api, schedule_id, clock=clock, page_size=page_size, change_overlap=change_overlap
        )

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def batch_size(self) -> int:
        return bulk.BULK_LIMIT

    def list_changes(self, cursor: str | None) -> ChangePage:
        return self.reader.changes(cursor, self.window)

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        return self.reader.window(start, end, overrides_of(self.reader.schedule()))

    def get(self, event_id: str) -> RemoteEvent:
        return self.reader.get(event_id)

    def create(
        self, event: CanonicalEvent, idempotency_key: str, *, marker: str, tag: str | None = None
    ) -> RemoteEvent:
        self._writable()
        if event.is_instance:
            return self._write_occurrence(event, marker)
        existing = self.reader.created_with(idempotency_key)
        if existing is not None:
            return self.reader.remote(existing)  # a retry: the first attempt's event
        body = self._new_event(event, idempotency_key, marker, tag)
        created = self.api.call("POST", EVENTS_PATH, {"event": body})["event"]
        if event.status is EventStatus.CANCELLED:
            cancelled = self._cancel(created["id"], revision_of(created))
            return cancelled or RemoteEvent.gone(created["id"])
        return self.reader.remote(created)

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        self._writable()
        current = self.reader.event(event_id)
        if current.get("status") == "CANCELLED":
            return self._update_cancelled(current, event)
        if stale := _stale(current, if_match):
            raise stale
        if event.status is EventStatus.CANCELLED:
            cancelled = self._cancel(event_id, revision_of(current))
            return cancelled or RemoteEvent.gone(event_id)
        return self._patch(current, event, {})

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._writable()
        self._cancel(event_id, if_match)

    def write_many(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """Consecutive creates, updates or cancels as bulk calls of at most 100 writes, in
        order; an occurrence of a series, or a write that cancels through its event, by its
        single call."""
        self._writable()
        outcomes: list[WriteOutcome] = []
        for kind, run in groupby(writes, _bulk_kind):
            group = list(run)
            for offset in range(0, len(group), bulk.BULK_LIMIT):
                outcomes += self._write_group(kind, group[offset : offset + bulk.BULK_LIMIT])
        return outcomes

    # -- internals ----------------------------------------------------------------------

    def _writable(self) -> None:
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, "this Wix schedule is read-only")

    def _write_group(self, kind: type | None, writes: list[Write]) -> list[WriteOutcome]:
        if kind is NewEvent:
            return self._outcomes(self._create_many(cast(list[NewEvent], writes)))
        if kind is EventChange:
            return self._outcomes(self._update_many(cast(list[EventChange], writes)))
        if kind is EventRemoval:
            return self._cancel_many(cast(list[EventRemoval], writes))
        return [self._write_one(write) for write in writes]

    def _write_one(self, write: Write) -> WriteOutcome:
        """A write by its single call; an error of the whole request still stops the batch."""
        try:
            if isinstance(write, NewEvent):
                return self.create(write.event, write.idempotency_key, marker=write.marker,
                                   tag=write.tag)  # fmt: skip
            if isinstance(write, EventChange):
                return self.update(write.event_id, write.event, write.if_match)
            self.delete(write.event_id, write.if_match)
            return None
        except ProviderError as error:
            if _stops_batch(error):
                raise
            return error

    def _create_many(self, writes: list[NewEvent]) -> list[Landed]:
        """One query finds the keys earlier creates used, as a retried `create` would; one bulk
        create makes the rest, one event per key."""
        landed: dict[str, Landed] = dict(
            self.reader.created_with_keys([write.idempotency_key for write in writes])
        )
        bodies: dict[str, dict[str, Any]] = {}
        for write in writes:
            key = write.idempotency_key
            if key in landed or key in bodies:
                continue
            try:
                bodies[key] = self._new_event(write.event, key, write.marker, write.tag)
            except PermanentError as refused:  # a recurrence Wix cannot express
                landed[key] = refused
        if bodies:
            body = {"events": [{"event": new} for new in bodies.values()], "returnEntity": True}
            answer = self.api.call("POST", bulk.CREATE_PATH, body)
            landed.update(zip(bodies, bulk.events_of(answer, len(bodies)), strict=True))
        return [landed[write.idempotency_key] for write in writes]

    def _update_many(self, writes: list[EventChange]) -> list[Landed]:
        """One query reads the current events; each change's differing fields go in bulk
        updates at the revision read, as `update` does. An event the query did not find (an
        INSTANCE, a missing one) or a cancelled one goes by the single call."""
        current = self.reader.events([write.event_id for write in writes])
        landed: list[Landed] = []
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, write in enumerate(writes):
            doc = current.get(write.event_id)
            if doc is None or doc.get("status") == "CANCELLED":
                landed.append(self._write_one(write))
                continue
            try:
                masked = _change_of(doc, write)
            except (PreconditionFailed, PermanentError) as refused:
                landed.append(refused)
                continue
            landed.append(doc)  # unchanged unless sent
            if masked is not None:
                pending.append((index, masked))
        for offset in range(0, len(pending), bulk.UPDATE_LIMIT):
            chunk = pending[offset : offset + bulk.UPDATE_LIMIT]
            body = {"events": [masked for _, masked in chunk], "returnEntity": True}
            answer = self.api.call("POST", bulk.UPDATE_PATH, body)
            for (index, _), item in zip(chunk, bulk.events_of(answer, len(chunk)), strict=True):
                landed[index] = item
        return landed

    def _cancel_many(self, writes: list[EventRemoval]) -> list[WriteOutcome]:
        """One bulk cancel. It takes no revisions, so an If-Match is checked against the events
        read in one query just before (an edit in between is not caught, as it would be by
        `delete`). An event the query did not find goes by the single call."""
        guarded = [write.event_id for write in writes if write.if_match is not None]
        current = self.reader.events(guarded) if guarded else {}
        outcomes: list[WriteOutcome] = []
        pending: list[tuple[int, str]] = []
        for index, write in enumerate(writes):
            doc = current.get(write.event_id)
            if write.if_match is not None and doc is None:
                outcomes.append(self._write_one(write))
            elif doc is not None and doc.get("status") == "CANCELLED":
                outcomes.append(None)  # cancelled already: done
            elif doc is not None and (stale := _stale(doc, write.if_match)):
                outcomes.append(stale)
            else:
                outcomes.append(None)
                pending.append((index, write.event_id))
        if pending:
            body = {"eventIds": [event_id for _, event_id in pending]}
            errors = bulk.cancel_errors(self.api.call("POST", bulk.CANCEL_PATH, body), len(pending))
            for (index, _), error in zip(pending, errors, strict=True):
                outcomes[index] = error
        return outcomes

    def _outcomes(self, landed: list[Landed]) -> list[WriteOutcome]:
        """Wix's events read as calsync's, the schedule's overrides fetched once if a session
        is among them."""
        docs = [item for item in landed if isinstance(item, dict)]
        sessions = any(not calsync_data(doc) for doc in docs)
        overrides = overrides_of(self.reader.schedule()) if sessions else None
        return [_outcome(item, overrides) for item in landed]

    def _new_event(
        self, event: CanonicalEvent, idempotency_key: str, marker: str, tag: str | None
    ) -> dict[str, Any]:
        """A create's event: calsync's tag, marker and key in its namespace."""
        body: dict[str, Any] = {"scheduleId": self.schedule_id, **content_fields(event),
                                **when_fields(event, None)}  # fmt: skip
        if event.recurrence is not None and event.recurrence.rule:
            body["recurrenceRule"] = wix_rule(
                event.recurrence.rule, event.start, body.get("timeZone"), event.all_day
            )
        data = {"provider": tag or self.provider_tag, "marker": marker,
                "idempotencyKey": idempotency_key}  # fmt: skip
        body["extendedFields"] = with_calsync_data({}, {k: v for k, v in data.items() if v})
        return body

    def _write_occurrence(self, event: CanonicalEvent, marker: str) -> RemoteEvent:
        assert event.recurrence is not None and event.recurrence.series_id is not None
        series_id = event.recurrence.series_id
        doc = self.reader.occurrence(series_id, event.recurrence.original_start or event.start)
        if doc is None:
            raise NotFound(f"no occurrence of wix series {series_id} starts there")
        if doc.get("status") == "CANCELLED":
            return self._update_cancelled(doc, event)
        if calsync_data(doc).get("marker") == marker and doc["recurrenceType"] == "EXCEPTION":
            return self.reader.remote(doc)  # a retry: the first attempt wrote it
        if event.status is EventStatus.CANCELLED:
            cancelled = self._cancel(str(doc["id"]), revision_of(doc))
            return cancelled or RemoteEvent.gone(str(doc["id"]))
        return self._patch(doc, event, {"marker": marker})

    def _patch(
        self, current: dict[str, Any], event: CanonicalEvent, data: dict[str, str]
    ) -> RemoteEvent:
        """Write only what differs from `current`, at its revision."""
        fields = changed_fields(current, event)
        if data:
            fields["extendedFields"] = with_calsync_data(current, data)
        if not fields:
            return self.reader.remote(current)
        path = f"{EVENTS_PATH}/{quote(str(current['id']), safe='')}"
        try:
            patched = self.api.call("PATCH", path, _masked(current, fields))["event"]
            return self.reader.remote(patched)
        except WixAnswer as answer:
            if answer.code == "EVENT_CANCELLED":
                raise NotFound(f"wix event {current['id']} was cancelled") from None
            raise PreconditionFailed(str(answer)) from None

    def _update_cancelled(self, current: dict[str, Any], event: CanonicalEvent) -> RemoteEvent:
        """A cancelled single event or series is gone; a cancelled occurrence stays one (Wix
        cannot restore it)."""
        if not self.reader.is_cancelled_occurrence(current):
            raise NotFound(f"wix event {current['id']} was cancelled")
        if event.status is not EventStatus.CANCELLED:
            raise PermanentError(
                PermanentReason.INVALID_EVENT, "Wix cannot restore a cancelled occurrence"
            )
        return self.reader.remote(current)

    def _cancel(self, event_id: str, revision: str | None) -> RemoteEvent | None:
        """Cancel; the cancelled event as Wix answers it, or None when it was gone already."""
        body = {} if revision is None else {"revision": revision}
        path = f"{EVENTS_PATH}/{quote(event_id, safe='')}/cancel"
        try:
            doc = self.api.call("POST", path, body)["event"]
        except NotFound:
            return None
        except WixAnswer as answer:
            if answer.code == "EVENT_CANCELLED":
                return None
            raise PreconditionFailed(str(answer)) from None
        if self.reader.is_cancelled_occurrence(doc):
            return self.reader.remote(doc)
        return RemoteEvent.gone(event_id, revision_of(doc))


def _bulk_kind(write: Write) -> type | None:
    """The bulk call a write joins; None for one that goes by its single call."""
    if isinstance(write, EventRemoval):
        return EventRemoval
    if write.event.is_instance or write.event.status is EventStatus.CANCELLED:
        return None
    return type(write)


def _stops_batch(error: ProviderError) -> bool:
    """Throttled, unreachable, unauthorised, the schedule gone: not this write's own error."""
    if isinstance(error, PermanentError):
        return error.reason is not PermanentReason.INVALID_EVENT
    return isinstance(error, TransientError)


def _stale(current: dict[str, Any], if_match: str | None) -> PreconditionFailed | None:
    """The error of an If-Match that `current` no longer matches."""
    if if_match is None or if_match == revision_of(current):
        return None
    return PreconditionFailed(f"wix event {current['id']} is at another revision")


def _change_of(current: dict[str, Any], write: EventChange) -> dict[str, Any] | None:
    """A change as a bulk update item, None when nothing differs."""
    if stale := _stale(current, write.if_match):
        raise stale
    fields = changed_fields(current, write.event)
    return _masked(current, fields) if fields else None


def _masked(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` (None: clear it) as Wix's masked event, at `current`'s revision."""
    event = {key: value for key, value in fields.items() if value is not None}
    event.update(id=current["id"], revision=revision_of(current))
    return {"event": event, "fieldmask": {"paths": sorted(fields)}}


def _outcome(item: Landed, overrides: ExternalCalendarOverrides | None) -> WriteOutcome:
    if not isinstance(item, dict):
        return item
    try:
        return mapped(item, overrides)
    except PermanentError as unreadable:
        return unreadable
