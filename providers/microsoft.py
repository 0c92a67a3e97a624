"""The Microsoft 365 / Outlook provider: one mailbox (`MicrosoftAccount`) and its calendars
(`MicrosoftCalendar`, a `CalendarProvider`), on the O365 package and Microsoft Graph v1.0.

O365 supplies the connection (its `MSGraphProtocol` aimed at the configured Graph base URL) and
subscriptions; what it lacks is done over that connection: delta queries, `If-Match`, extended
properties, occurrences (see docs/microsoft.md). Modules:

- `microsoft_auth`: MSAL sign-in and token refresh;   - `microsoft_graph`: connection, errors;
- `microsoft_listing`: delta rounds and series form;  - `microsoft_writes`: creates, updates;
- `microsoft_events`, `microsoft_recurrence`, `microsoft_time`: mapping to calsync's event;
- `microsoft_subscriptions`, `microsoft_notifications`: push.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from providers.base import (
    BeforeRequest,
    CalendarInfo,
    ChangePage,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    SyncWindow,
)
from providers.microsoft_auth import MicrosoftAuth, MicrosoftTokens
from providers.microsoft_events import marker_of, parse_exception_id, stored_shape
from providers.microsoft_graph import GraphClient, TokensSaved
from providers.microsoft_listing import CalendarReader, Cursor, expanded, single
from providers.microsoft_notifications import (
    ChangeNotice,
    LifecycleEvent,
    LifecycleNotice,
    parse_lifecycle,
    parse_notifications,
)
from providers.microsoft_subscriptions import (
    EVENTS_RESOURCE,
    Subscription,
    SubscriptionRefused,
    reauthorize,
    renew,
    subscribe,
    unsubscribe,
)
from providers.microsoft_writes import CalendarWriter, stored_remote
from sync.event import CanonicalEvent, Moment, Recurrence
from sync.snapshot import RemoteEvent

__all__ = [
    "EVENTS_RESOURCE",
    "ChangeNotice",
    "LifecycleEvent",
    "LifecycleNotice",
    "MicrosoftAccount",
    "MicrosoftAuth",
    "MicrosoftCalendar",
    "MicrosoftTokens",
    "Subscription",
    "SubscriptionRefused",
    "parse_lifecycle",
    "parse_notifications",
]

DEFAULT_PAGE_SIZE = 100
T = TypeVar("T")


class MicrosoftAccount:
    """A signed-in mailbox: its calendars and its change-notification subscriptions."""

    def __init__(
        self,
        tokens: MicrosoftTokens,
        *,
        auth: MicrosoftAuth,
        graph_base_url: str,
        before_request: BeforeRequest | None = None,
        on_tokens: TokensSaved | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.client = GraphClient(
            tokens,
            auth,
            graph_base_url=graph_base_url,
            before_request=before_request,
            on_tokens=on_tokens,
            timeout=timeout,
        )

    @classmethod
    def from_settings(
        cls,
        tokens: MicrosoftTokens,
        settings: Any,
        *,
        before_request: BeforeRequest | None = None,
        on_tokens: TokensSaved | None = None,
    ) -> MicrosoftAccount:
        return cls(
            tokens,
            auth=MicrosoftAuth.from_settings(settings),
            graph_base_url=str(settings.microsoft_graph_base_url),
            before_request=before_request,
            on_tokens=on_tokens,
        )

    @property
    def tokens(self) -> MicrosoftTokens:
        """The current tokens (refreshed ones included; `on_tokens` saw them too)."""
        return self.client.tokens

    def close(self) -> None:
        self.client.close()

    def list_calendars(self) -> list[CalendarInfo]:
        # Raw: O365's Calendar objects drop `isDefaultCalendar`.
        found = self.client.pages(self.client.me("/calendars"), {"$top": "100"})
        return [_calendar_info(raw) for raw in found]

    def create_calendar(self, name: str) -> CalendarInfo:
        """A new calendar in the mailbox (`POST /me/calendars` -> 201 with the calendar). A name
        already taken answers 409 `ErrorFolderExists` (not in Graph's docs; reported by
        third parties, e.g. after a create whose answer was lost): that calendar is the one."""
        try:
            return _calendar_info(self.client.post_json(self.client.me("/calendars"),
                                                        {"name": name}))  # fmt: skip
        except PreconditionFailed:
            same = [c for c in self.list_calendars() if c.name.casefold() == name.casefold()]
            if not same:
                raise
            return same[0]

    def calendar(
        self,
        remote_id: str,
        window: SyncWindow,
        read_only: bool = False,
        *,
        primary: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> MicrosoftCalendar:
        return MicrosoftCalendar(
            self.client,
            remote_id,
            window,
            read_only=read_only,
            primary=primary,
            page_size=page_size,
        )

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(
        self,
        resource: str,
        notification_url: str,
        lifecycle_url: str | None,
        client_state: str,
        expires_at: datetime,
    ) -> Subscription:
        return subscribe(
            self.client, resource, notification_url, lifecycle_url, client_state, expires_at
        )

    def renew(self, subscription_id: str, expires_at: datetime) -> Subscription:
        return renew(self.client, subscription_id, expires_at)

    def reauthorize(self, subscription_id: str) -> None:
        reauthorize(self.client, subscription_id)

    def unsubscribe(self, subscription_id: str) -> None:
        unsubscribe(self.client, subscription_id)


class MicrosoftCalendar:
    """One Outlook calendar behind the `CalendarProvider` interface."""

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
        parsed = parse_exception_id(event_id)
        if parsed is not None:
            return self.writer.exception(*parsed)
        try:
            raw = self.writer.fetch(event_id)
        except NotFound:
            return RemoteEvent.gone(event_id)  # Graph keeps no tombstones: deleted or unknown
        if raw.get("type") in ("occurrence", "exception"):
            return expanded(raw)
        if raw.get("type") == "seriesMaster":
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

    def _check_writable(self) -> None:
        if self._read_only:
            raise PermanentError(PermanentReason.FORBIDDEN, "the calendar is read-only")

    def _calendar_call(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except NotFound:
            raise PermanentError(PermanentReason.CALENDAR_DELETED, "the calendar is gone") from None


def _calendar_info(raw: dict[str, Any]) -> CalendarInfo:
    return CalendarInfo(
        remote_id=str(raw["id"]),
        name=str(raw.get("name") or ""),
        read_only=not raw.get("canEdit", False),
        primary=bool(raw.get("isDefaultCalendar")),
    )


def _at_slot(event: CanonicalEvent, series_id: str, original: Moment) -> CanonicalEvent:
    """An exception update names its slot by id; make the event say the same."""
    rec = event.recurrence
    if rec is not None and rec.series_id == series_id and rec.original_start is not None:
        return event
    return replace(event, recurrence=Recurrence(series_id=series_id, original_start=original))
