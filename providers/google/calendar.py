"""One Google calendar behind `CalendarProvider`. Writes are idempotent as `providers.base` asks:

- create: the event id derives from the idempotency key, so a retried insert gets 409 and the
  first attempt's event is fetched and returned (a deleted one is brought back, as a CalDAV PUT
  to the same href would). An exception of a series (a moved or cancelled occurrence) is written
  onto Google's instance `<series id>_<original start>`, which is idempotent by itself.
- update: a patch of the fields calsync owns, so the owner's other fields (guests, reminders,
  colour) and our marker survive; always conditional on the etag (fetched first if the caller
  has none, so a deleted event is never brought back by an update).
- delete: conditional too; 404 and 410 mean it is already gone. Deleting an occurrence cancels it.
- write_many: up to `batch_size` writes per batch request, each with its single call's request
  and meaning; an occurrence, or an update without a version, goes alone after the batch.

Listing is in `listing` (two streams: our series, everyone else's occurrences), the mapping in
`events`, HTTP and errors in `http`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, NoReturn, TypeVar

from providers.base import (
    ChangePage,
    EventChange,
    EventRemoval,
    NewEvent,
    RemoteEvent,
    SyncWindow,
    Write,
    WriteOutcome,
)
from providers.errors import (
    AlreadyExists,
    NotFound,
    PermanentError,
    PermanentReason,
    ProviderError,
)
from providers.google.events import (
    Resource,
    event_body,
    event_id_for,
    expanded_form,
    has_details,
    instance_id,
    is_cancelled,
    is_instance_id,
    marker_body,
    marker_of,
    series_form,
    series_of,
)
from providers.google.http import ApiCall, CalendarApi, Missing
from providers.google.listing import PAGE_SIZE, Listing, SeriesOwners
from providers.unreadable import read_or_unreadable
from sync.event import CanonicalEvent

T = TypeVar("T", covariant=True)


class GoogleCalendar:
    """One Google calendar as a `CalendarProvider`."""

    write_concurrency = 1  # one write at a time
    batch_size = 50  # Google recommends no more than 50 calls per batch

    def __init__(
        self,
        api: CalendarApi,
        calendar_id: str,
        window: SyncWindow,
        *,
        read_only: bool = False,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.api = api
        self.calendar_id = calendar_id
        self.window = window
        self._read_only = read_only
        self._listing = Listing(self._list_page, self._fetch, window, page_size)

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- reads -------------------------------------------------------------------------------

    def list_changes(self, cursor: str | None) -> ChangePage:
        if cursor is None:
            return self._listing.full()
        return self._listing.changes(cursor)

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        page = self._listing.full(start, end)
        return [item for item in page.changes if item.event is not None]

    def get(self, event_id: str) -> RemoteEvent:
        resource = self._fetch(event_id)
        return read_or_unreadable(event_id, None, lambda: self._view(resource))

    # -- writes ------------------------------------------------------------------------------

    def create(
        self,
        event: CanonicalEvent,
        idempotency_key: str,
        *,
        marker: str,
        tag: str | None = None,
    ) -> RemoteEvent:
        self._check_writable()
        occurrence = _occurrence_id(event)
        if occurrence is not None:
            return self._write_occurrence(occurrence, event, marker)
        return self._send(self._insertion(event, idempotency_key, marker))

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        self._check_writable()
        if if_match is None:
            current = self._fetch(event_id)
            if is_cancelled(current) and not is_instance_id(event_id):
                raise NotFound(f"event {event_id} was deleted")
            if_match = str(current["etag"])
        return self._send(self._change(event_id, event, if_match))

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._check_writable()
        self._send(self._removal(event_id, if_match))

    # -- batched writes ----------------------------------------------------------------------

    def write_many(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        self._check_writable()
        size = self.batch_size
        chunks = (writes[start : start + size] for start in range(0, len(writes), size))
        return [outcome for chunk in chunks for outcome in self._write_chunk(chunk)]

    def _write_chunk(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        """One batch request for the writes that are one request each; then the others alone,
        after it, so that an occurrence finds a series the batch made."""
        batched = {
            index: request
            for index, write in enumerate(writes)
            if (request := self._batchable(write)) is not None
        }
        answers = self.api.execute_batch([request.call for request in batched.values()])
        outcomes = dict(zip(batched, map(_settled, batched.values(), answers), strict=True))
        return [
            outcomes[index] if index in outcomes else self._alone(write)
            for index, write in enumerate(writes)
        ]

    def _batchable(self, write: Write) -> WriteRequest[WriteOutcome] | None:
        """The write as one request, unless it is an occurrence or an update that must read
        the event's version first."""
        if isinstance(write, NewEvent) and _occurrence_id(write.event) is None:
            return self._insertion(write.event, write.idempotency_key, write.marker)
        if isinstance(write, EventChange) and write.if_match is not None:
            return self._change(write.event_id, write.event, write.if_match)
        if isinstance(write, EventRemoval):
            return self._removal(write.event_id, write.if_match)
        return None

    def _alone(self, write: Write) -> WriteOutcome:
        """A write as the single call makes it; its error is its outcome."""
        try:
            if isinstance(write, NewEvent):
                key, marker = write.idempotency_key, write.marker
                return self.create(write.event, key, marker=marker, tag=write.tag)
            if isinstance(write, EventChange):
                return self.update(write.event_id, write.event, write.if_match)
            self.delete(write.event_id, write.if_match)
        except ProviderError as error:
            return error
        return None

    # -- one write as one request ------------------------------------------------------------

    def _insertion(
        self, event: CanonicalEvent, idempotency_key: str, marker: str
    ) -> WriteRequest[RemoteEvent]:
        event_id = event_id_for(idempotency_key)
        body = {"id": event_id, **_without_nulls(event_body(event)), **marker_body(marker)}
        request = self._events().insert(calendarId=self.calendar_id, body=body)
        return WriteRequest(
            ApiCall(request, Missing.CALENDAR),
            series_form,
            partial(self._found_again, event_id, event, marker),
        )

    def _change(
        self, event_id: str, event: CanonicalEvent, if_match: str
    ) -> WriteRequest[RemoteEvent]:
        body = event_body(event, instance=is_instance_id(event_id))
        request = self._events().patch(calendarId=self.calendar_id, eventId=event_id, body=body)
        return WriteRequest(ApiCall(request, if_match=if_match), self._view)

    def _removal(self, event_id: str, if_match: str | None) -> WriteRequest[None]:
        request = self._events().delete(calendarId=self.calendar_id, eventId=event_id)
        return WriteRequest(ApiCall(request, if_match=if_match), lambda _: None, _already_gone)

    def _send(self, write: WriteRequest[T]) -> T:
        call = write.call
        try:
            answer = self._execute(call.request, missing=call.missing, if_match=call.if_match)
        except ProviderError as error:
            return write.recover(error)
        return write.done(answer)

    # -- internals ---------------------------------------------------------------------------

    def _write_occurrence(self, occurrence: str, event: CanonicalEvent, marker: str) -> RemoteEvent:
        """A moved or cancelled occurrence of a series: a patch of Google's instance."""
        body = {**event_body(event, instance=True), **marker_body(marker)}
        request = self._events().patch(calendarId=self.calendar_id, eventId=occurrence, body=body)
        return series_form(self._execute(request))

    def _found_again(
        self, event_id: str, event: CanonicalEvent, marker: str, error: ProviderError
    ) -> RemoteEvent:
        """A create retried (409): the first attempt's event; if it was deleted since, revived."""
        if not isinstance(error, AlreadyExists):
            raise error
        current = self._fetch(event_id)
        if not is_cancelled(current):
            return series_form(current)
        body = {**event_body(event), **marker_body(marker)}
        request = self._events().patch(calendarId=self.calendar_id, eventId=event_id, body=body)
        return series_form(self._execute(request, if_match=str(current["etag"])))

    def _view(self, resource: Resource) -> RemoteEvent:
        """Our events in series form, everyone else's occurrence by occurrence."""
        if marker_of(resource) is not None:
            return series_form(resource)
        bare_occurrence = not has_details(resource) and series_of(resource) is not None
        if bare_occurrence and SeriesOwners(self._fetch).ours(resource):
            return series_form(resource)
        return expanded_form(resource)

    def _fetch(self, event_id: str) -> Resource:
        request = self._events().get(calendarId=self.calendar_id, eventId=event_id)
        resource: Resource = self._execute(request)
        return resource

    def _list_page(self, params: dict[str, Any]) -> dict[str, Any]:
        request = self._events().list(calendarId=self.calendar_id, **params)
        page: dict[str, Any] = self._execute(request, missing=Missing.CALENDAR)
        return page

    def _execute(
        self, request: Any, *, missing: Missing = Missing.EVENT, if_match: str | None = None
    ) -> Any:
        return self.api.execute(request, missing=missing, if_match=if_match)

    def _events(self) -> Any:
        return self.api.service.events()

    def _check_writable(self) -> None:
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, "the calendar is read-only")


def _reraise(error: ProviderError) -> NoReturn:
    raise error


@dataclass(frozen=True)
class WriteRequest(Generic[T]):
    """One write as one request: the call, what its answer comes to, and what an error of it
    comes to (the error itself, unless the write's contract makes it a success)."""

    call: ApiCall
    done: Callable[[Any], T]
    recover: Callable[[ProviderError], T] = _reraise


def _settled(write: WriteRequest[WriteOutcome], answer: Any) -> WriteOutcome:
    """A batched write's outcome from its answer (a decoded body or a `ProviderError`)."""
    try:
        return write.recover(answer) if isinstance(answer, ProviderError) else write.done(answer)
    except ProviderError as error:
        return error


def _occurrence_id(event: CanonicalEvent) -> str | None:
    """Google's instance id when the event is one occurrence of a series."""
    rec = event.recurrence
    if rec is None or rec.series_id is None or rec.original_start is None:
        return None
    return instance_id(rec.series_id, rec.original_start)


def _already_gone(error: ProviderError) -> None:
    if not isinstance(error, NotFound):  # 404, or 410 `deleted`: a delete is done
        raise error


def _without_nulls(body: Resource) -> Resource:
    return {key: value for key, value in body.items() if value is not None}
