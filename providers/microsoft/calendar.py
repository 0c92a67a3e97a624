"""One Outlook calendar behind `CalendarProvider` and `BatchWriter`: delta rounds to list
(`listing`), creates with `transactionId` and conditional updates and deletes to write
(`writes`), alone or in `$batch` requests (`batch`), and the mapping to calsync's event in
`events`, `recurrence` and `timezones`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from providers.base import (
    ChangePage,
    EventChange,
    NewEvent,
    SyncWindow,
    Write,
    WriteOutcome,
)
from providers.errors import NotFound, PermanentError, PermanentReason
from providers.microsoft.batch import BATCH_SIZE, Exchange, made_alone, run_batched
from providers.microsoft.events import marker_of, parse_exception_id, stored_shape
from providers.microsoft.http import GraphClient
from providers.microsoft.listing import CalendarReader, Cursor, expanded, single
from providers.microsoft.writes import CalendarWriter, stored_remote
from providers.unreadable import read_or_unreadable
from sync.event import CanonicalEvent, Moment, Recurrence
from sync.snapshot import RemoteEvent

DEFAULT_PAGE_SIZE = 100


T = TypeVar("T")


class MicrosoftCalendar:
    """One Outlook calendar behind the `CalendarProvider` interface."""

    write_concurrency = 1  # one write at a time

    def __init__(
        self,
        client: GraphClient,
        remote_id: str,
        window: SyncWindow,
        *,
        read_only: bool = False,
        primary: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.remote_id = remote_id
        self._read_only = read_only
        calendar_url = client.me(f"/calendars/{quote(remote_id, safe='')}")
        # v1.0 documents delta for the primary calendar at /me/calendarView/delta; other
        # calendars use the per-calendar path (docs/microsoft.md says why).
        delta_url = (
            client.me("/calendarView/delta") if primary else f"{calendar_url}/calendarView/delta"
        )
        self.reader = CalendarReader(client, calendar_url, delta_url, window, page_size)
        self.writer = CalendarWriter(client, calendar_url, self.reader)

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- reading ------------------------------------------------------------------------------

    def list_changes(self, cursor: str | None) -> ChangePage:
        if cursor is None:
            round_ = self._calendar_call(lambda: self.reader.delta(None))
            ours = self._calendar_call(self.reader.ours)
            listed, series = self.reader.full(round_.items, ours)
            return ChangePage(tuple(listed), Cursor(round_.delta_link, series).encode(), True)
        held = Cursor.decode(cursor)
        round_ = self._calendar_call(lambda: self.reader.delta(held.delta_link))
        if not round_.items and not round_.removed:
            return ChangePage((), Cursor(round_.delta_link, held.series).encode(), False)
        ours = self._calendar_call(self.reader.ours)
        changed, series = self.reader.changes(round_, ours, held.series)
        return ChangePage(tuple(changed), Cursor(round_.delta_link, series).encode(), False)

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        window = SyncWindow(start, end)
        reader = CalendarReader(
            self.reader.client,
            self.reader.calendar_url,
            self.reader.delta_url,
            window,
            self.reader.page_size,
        )
        view = self._calendar_call(lambda: reader.view(start, end))
        listed, _ = reader.full(view, self._calendar_call(reader.ours))
        return [r for r in listed if r.event is not None]

    def get(self, event_id: str) -> RemoteEvent:
        return read_or_unreadable(event_id, None, lambda: self._get(event_id))

    def _get(self, event_id: str) -> RemoteEvent:
        parsed = parse_exception_id(event_id)
        if parsed is not None:
            return self.writer.exception(*parsed)
        try:
            raw = self.writer.fetch(event_id)
        except NotFound:
            return RemoteEvent.gone(event_id)  # Graph keeps no tombstones: deleted or unknown
        kind = raw["type"]  # without one it is unreadable, as the listings report it
        if kind in ("occurrence", "exception"):
            return expanded(raw)
        if kind == "seriesMaster":
            return stored_remote(raw, stored_shape(raw), marker_of(raw))
        return single(raw, raw)

    # -- writing ------------------------------------------------------------------------------

    def create(
        self, event: CanonicalEvent, idempotency_key: str, *, marker: str, tag: str | None = None
    ) -> RemoteEvent:
        self._check_writable()
        if event.is_instance:
            return self.writer.write_exception(event, None, marker)
        return self.writer.create(event, idempotency_key, marker)

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        self._check_writable()
        parsed = parse_exception_id(event_id)
        if parsed is not None:
            return self.writer.write_exception(_at_slot(event, *parsed), if_match, None)
        return self.writer.update(event_id, event, if_match)

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._check_writable()
        parsed = parse_exception_id(event_id)
        if parsed is not None:
            self.writer.delete_exception(parsed[0], parsed[1], if_match)
        else:
            self.writer.delete(event_id, if_match)

    # -- writing in batches ---------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return BATCH_SIZE

    def write_many(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """The writes in `$batch` requests of 20, each as its single call would make it; a write
        of a series' exception goes out alone (its occurrence has to be looked up first)."""
        self._check_writable()
        return run_batched(self.reader.client, [self._exchange(write) for write in writes])

    def _exchange(self, write: Write) -> Exchange[RemoteEvent | None]:
        if _in_series(write):
            return made_alone(lambda: self._write_alone(write))
        if isinstance(write, NewEvent):
            return self.writer.creating(write.event, write.idempotency_key, write.marker)
        if isinstance(write, EventChange):
            return self.writer.updating(write.event_id, write.event, write.if_match)
        return self.writer.deleting(write.event_id, write.if_match)

    def _write_alone(self, write: Write) -> RemoteEvent | None:
        if isinstance(write, NewEvent):
            return self.create(
                write.event, write.idempotency_key, marker=write.marker, tag=write.tag
            )
        if isinstance(write, EventChange):
            return self.update(write.event_id, write.event, write.if_match)
        self.delete(write.event_id, write.if_match)
        return None

    def _check_writable(self) -> None:
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, "the calendar is read-only")

    def _calendar_call(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except NotFound:
            raise PermanentError(PermanentReason.CALENDAR_DELETED, "the calendar is gone") from None


def _in_series(write: Write) -> bool:
    """Whether the write makes, changes or removes one occurrence of a series."""
    if isinstance(write, NewEvent):
        return write.event.is_instance
    return parse_exception_id(write.event_id) is not None


def _at_slot(event: CanonicalEvent, series_id: str, original: Moment) -> CanonicalEvent:
    """An exception update names its slot by id; make the event say the same."""
    rec = event.recurrence
    if rec is not None and rec.series_id == series_id and rec.original_start is not None:
        return event
    return replace(event, recurrence=Recurrence(series_id=series_id, original_start=original))
