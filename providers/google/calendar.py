"""One Google calendar behind `CalendarProvider`. Writes are idempotent as `providers.base` asks:

- create: the event id derives from the idempotency key, so a retried insert gets 409 and the
  first attempt's event is fetched and returned (a deleted one is brought back, as a CalDAV PUT
  to the same href would). An exception of a series (a moved or cancelled occurrence) is written
  onto Google's instance `<series id>_<original start>`, which is idempotent by itself.
- update: a patch of the fields calsync owns, so the owner's other fields (guests, reminders,
  colour) and our marker survive; always conditional on the etag (fetched first if the caller
  has none, so a deleted event is never brought back by an update).
- delete: conditional too; 404 and 410 mean it is already gone. Deleting an occurrence cancels it.

Listing is in `listing` (two streams: our series, everyone else's occurrences), the mapping in
`events`, HTTP and errors in `http`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from providers.base import ChangePage, RemoteEvent, SyncWindow
from providers.errors import AlreadyExists, NotFound, PermanentError, PermanentReason
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
from providers.google.http import CalendarApi, Missing
from providers.google.listing import PAGE_SIZE, Listing, SeriesOwners
from sync.event import CanonicalEvent


class GoogleCalendar:
    """One Google calendar as a `CalendarProvider`."""

    write_concurrency = 1  # one write at a time

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
        return self._view(self._fetch(event_id))

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
        rec = event.recurrence
        if rec is not None and rec.series_id is not None and rec.original_start is not None:
            return self._write_occurrence(event, rec.series_id, rec.original_start, marker)
        event_id = event_id_for(idempotency_key)
        body = {"id": event_id, **_without_nulls(event_body(event)), **marker_body(marker)}
        request = self._events().insert(calendarId=self.calendar_id, body=body)
        try:
            return series_form(self._execute(request, missing=Missing.CALENDAR))
        except AlreadyExists:
            return self._found_again(event_id, event, marker)

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        self._check_writable()
        instance = is_instance_id(event_id)
        if if_match is None:
            current = self._fetch(event_id)
            if is_cancelled(current) and not instance:
                raise NotFound(f"event {event_id} was deleted")
            if_match = str(current["etag"])
        body = event_body(event, instance=instance)
        request = self._events().patch(calendarId=self.calendar_id, eventId=event_id, body=body)
        return self._view(self._execute(request, if_match=if_match))

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._check_writable()
        request = self._events().delete(calendarId=self.calendar_id, eventId=event_id)
        try:
            self._execute(request, if_match=if_match)
        except NotFound:
            return  # 404, or 410 `deleted`: already gone

    # -- internals ---------------------------------------------------------------------------

    def _write_occurrence(
        self, event: CanonicalEvent, series_id: str, original: Any, marker: str
    ) -> RemoteEvent:
        """A moved or cancelled occurrence of a series: a patch of Google's instance."""
        body = {**event_body(event, instance=True), **marker_body(marker)}
        request = self._events().patch(
            calendarId=self.calendar_id, eventId=instance_id(series_id, original), body=body
        )
        return series_form(self._execute(request))

    def _found_again(self, event_id: str, event: CanonicalEvent, marker: str) -> RemoteEvent:
        """A create retried: the first attempt's event; if it was deleted since, revived."""
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


def _without_nulls(body: Resource) -> Resource:
    return {key: value for key, value in body.items() if value is not None}
