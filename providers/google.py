"""Google Calendar behind calsync's provider interface (reference §1; issue 7).

`GoogleAccount` is one connected Google account: its calendars, push channels, and a
`GoogleCalendar` per synced calendar. Writes are idempotent as `providers.base` asks:

- create: the event id derives from the idempotency key, so a retried insert gets 409 and the
  first attempt's event is fetched and returned (a deleted one is brought back, as a CalDAV PUT
  to the same href would). An exception of a series (a moved or cancelled occurrence) is written
  onto Google's instance `<series id>_<original start>`, which is idempotent by itself.
- update: a patch of the fields calsync owns, so the owner's other fields (guests, reminders,
  colour) and our marker survive; always conditional on the etag (fetched first if the caller
  has none, so a deleted event is never brought back by an update).
- delete: conditional too; 404 and 410 mean it is already gone. Deleting an occurrence cancels it.

Listing is in `providers.google_listing` (two streams: our series, everyone else's occurrences),
mapping in `providers.google_events`, HTTP and errors in `providers.google_http`, OAuth in
`providers.google_auth`, push notifications in `providers.google_push`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.base import (
    AlreadyExists,
    BeforeRequest,
    CalendarInfo,
    ChangePage,
    NotFound,
    PermanentError,
    PermanentReason,
    RemoteEvent,
    SyncWindow,
)
from providers.google_auth import GoogleTokens
from providers.google_events import (
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
from providers.google_http import CalendarApi, Missing, TokensCallback, ms_to_datetime
from providers.google_listing import PAGE_SIZE, Listing, SeriesOwners
from providers.google_push import (
    GoogleNotification,
    NotificationCheck,
    Verdict,
    verify_notification,
)
from sync.event import CanonicalEvent

__all__ = [
    "GoogleAccount",
    "GoogleCalendar",
    "GoogleNotification",
    "GoogleTokens",
    "NotificationCheck",
    "Verdict",
    "WatchedChannel",
    "verify_notification",
]

READ_ONLY_ROLES = frozenset({"reader", "freeBusyReader"})


@dataclass(frozen=True)
class WatchedChannel:
    """A push channel Google opened: stop it with both ids; renew it before `expires_at`."""

    channel_id: str
    resource_id: str
    expires_at: datetime | None


class GoogleAccount:
    """One connected Google account (its tokens), through the Calendar API at `api_base_url`."""

    def __init__(
        self,
        tokens: GoogleTokens,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        api_base_url: str,
        before_request: BeforeRequest | None = None,
        on_tokens: TokensCallback | None = None,
    ) -> None:
        self.api = CalendarApi(
            tokens,
            client_id=client_id,
            client_secret=client_secret,
            token_url=token_url,
            api_base_url=api_base_url,
            before_request=before_request,
            on_tokens=on_tokens,
        )

    @property
    def tokens(self) -> GoogleTokens:
        """The current tokens (refreshed ones included)."""
        return self.api.tokens

    def list_calendars(self) -> list[CalendarInfo]:
        calendars: list[CalendarInfo] = []
        page_token: str | None = None
        while True:
            request = self.api.service.calendarList().list(pageToken=page_token)
            page = self.api.execute(request, missing=Missing.CALENDAR)
            calendars += [_calendar_info(entry) for entry in page.get("items") or []]
            page_token = page.get("nextPageToken")
            if not page_token:
                return calendars

    def calendar(
        self,
        remote_id: str,
        window: SyncWindow,
        read_only: bool = False,
        *,
        page_size: int = PAGE_SIZE,
    ) -> GoogleCalendar:
        return GoogleCalendar(self.api, remote_id, window, read_only=read_only, page_size=page_size)

    def watch(
        self,
        calendar_id: str,
        channel_id: str,
        token: str,
        address: str,
        ttl_seconds: int | None = None,
    ) -> WatchedChannel:
        """Ask Google to POST to `address` whenever the calendar's events change."""
        body: dict[str, Any] = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
        }
        if ttl_seconds is not None:
            body["params"] = {"ttl": str(int(ttl_seconds))}
        request = self.api.service.events().watch(calendarId=calendar_id, body=body)
        channel = self.api.execute(request, missing=Missing.CALENDAR)
        return WatchedChannel(
            channel_id=str(channel.get("id") or channel_id),
            resource_id=str(channel["resourceId"]),
            expires_at=ms_to_datetime(channel.get("expiration")),
        )

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Stop a channel; one Google no longer knows counts as stopped."""
        body = {"id": channel_id, "resourceId": resource_id}
        try:
            self.api.execute(self.api.service.channels().stop(body=body))
        except NotFound:
            return


class GoogleCalendar:
    """One Google calendar as a `CalendarProvider`."""

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


def _calendar_info(entry: dict[str, Any]) -> CalendarInfo:
    return CalendarInfo(
        remote_id=str(entry["id"]),
        name=str(entry.get("summaryOverride") or entry.get("summary") or entry["id"]),
        read_only=entry.get("accessRole") in READ_ONLY_ROLES,
        primary=bool(entry.get("primary")),
        time_zone=entry.get("timeZone"),
    )


def _without_nulls(body: Resource) -> Resource:
    return {key: value for key, value in body.items() if value is not None}
