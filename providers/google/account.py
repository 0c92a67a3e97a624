"""One connected Google account: its calendars, its push channels (`events.watch`), and a
`GoogleCalendar` for each calendar that syncs."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from config import Settings
from providers.base import (
    AccountHooks,
    AccountSource,
    BeforeRequest,
    CalendarInfo,
    Channel,
    Credentials,
    SyncWindow,
)
from providers.errors import NotFound, ProviderError
from providers.google.auth import GoogleOAuthClient, GoogleTokens, refresh
from providers.google.calendar import GoogleCalendar
from providers.google.http import CalendarApi, Missing, TokensCallback, ms_to_datetime
from providers.google.listing import PAGE_SIZE

READ_ONLY_ROLES = frozenset({"reader", "freeBusyReader"})
CALENDAR_LIST_PAGE = 250  # calendarList's largest page (its default is 100)


# Google caps a channel at a week when asked for nothing else (its documented default).
CHANNEL_DAYS = 7


def open_account(settings: Settings, source: AccountSource, hooks: AccountHooks) -> GoogleAccount:
    """The account a connection's stored tokens open, with calsync's OAuth client."""
    on_credentials = hooks.on_credentials

    def keep(tokens: GoogleTokens) -> None:
        if on_credentials is not None:
            on_credentials(Credentials(tokens.to_dict(), tokens.expiry))

    return GoogleAccount(
        GoogleTokens.from_dict(dict(source.credentials)),
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value(),
        token_url=str(settings.google_token_url),
        api_base_url=str(settings.google_api_base_url),
        before_request=hooks.before_request,
        on_tokens=keep,
        http=hooks.http,
    )


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
        http: httpx.Client | None = None,
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
        self.oauth = GoogleOAuthClient(client_id, client_secret, token_url)
        self._http = http

    @property
    def tokens(self) -> GoogleTokens:
        """The current tokens (refreshed ones included)."""
        return self.api.tokens

    def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar on the account's calendar list, page by page. Hidden ones too: hiding
        is a display choice in Google's UI, not leaving the calendar. Deleted entries are not
        asked for (`showDeleted` false), so a calendar deleted or unsubscribed is absent."""
        calendars: list[CalendarInfo] = []
        page_token: str | None = None
        while True:
            request = self.api.service.calendarList().list(
                pageToken=page_token, showHidden=True, maxResults=CALENDAR_LIST_PAGE
            )
            page = self.api.execute(request, missing=Missing.CALENDAR)
            calendars += [_calendar_info(entry) for entry in page.get("items") or []]
            page_token = page.get("nextPageToken")
            if not page_token:
                return calendars

    def calendar(
        self, info: CalendarInfo, window: SyncWindow, *, page_size: int = PAGE_SIZE
    ) -> GoogleCalendar:
        return GoogleCalendar(
            self.api, info.remote_id, window, read_only=info.read_only, page_size=page_size
        )

    def create_calendar(self, name: str, key: str) -> CalendarInfo:
        raise NotImplementedError("calsync syncs a Google account's own calendars")

    def open_channel(
        self, calendar_id: str, address: str, ttl_seconds: int | None = None
    ) -> Channel:
        """Ask Google to POST to `address` whenever the calendar's events change; the channel
        token Google echoes in every notification is a fresh random secret."""
        channel_id, token = uuid.uuid4().hex, secrets.token_urlsafe(32)
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
        expires = ms_to_datetime(channel.get("expiration"))
        return Channel(
            channel_id=str(channel.get("id") or channel_id),
            resource_id=str(channel["resourceId"]),
            secret=token,
            expires_at=expires or datetime.now(UTC) + timedelta(days=CHANNEL_DAYS),
        )

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        """Google channels cannot be extended: a new one first, then the old one stopped (if
        that fails, the old one runs out by itself and calsync ignores it meanwhile)."""
        fresh = self.open_channel(calendar_id, address)
        with contextlib.suppress(ProviderError):
            self.stop_channel(channel)
        return fresh

    def stop_channel(self, channel: Channel) -> None:
        """Stop a channel; one Google no longer knows counts as stopped."""
        body = {"id": channel.channel_id, "resourceId": channel.resource_id}
        try:
            self.api.execute(self.api.service.channels().stop(body=body))
        except NotFound:
            return

    def refresh_credentials(self) -> Credentials:
        fresh = refresh(self.tokens, self.oauth, http=self._http)
        return Credentials(fresh.to_dict(), fresh.expiry)

    def close(self) -> None:
        """Nothing to release: httplib2 connections close with the object."""


def _calendar_info(entry: dict[str, Any]) -> CalendarInfo:
    return CalendarInfo(
        remote_id=str(entry["id"]),
        name=str(entry.get("summaryOverride") or entry.get("summary") or entry["id"]),
        read_only=entry.get("accessRole") in READ_ONLY_ROLES,
        primary=bool(entry.get("primary")),
        time_zone=entry.get("timeZone"),
    )
