"""An account of the local store: its calendars, a dedicated one made on request, push channels.

The store has no users: the account is the store itself, at the connection's server URL. A
store calendar standing in for a Wix schedule (`wix-<scheduleId>`, when
`CALSYNC_WIX_LOCAL_STORE_URL` is set) is not one of the account's calendars, but it has push
channels too: those of a connection to another system reach the Wix side's store.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

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
from providers.errors import ProviderError
from providers.local.calendar import LocalCalendar
from providers.local.http import error_for

ID = "local"
WIX_PREFIX = "wix-"  # store calendars that stand in for Wix schedules
CHANNEL_DAYS = 7


def open_account(settings: Settings, source: AccountSource, hooks: AccountHooks) -> LocalAccount:
    store = source.server_url if source.provider == ID else settings.wix_local_store_url
    if not store:
        raise ProviderError("no local store to reach (CALSYNC_WIX_LOCAL_STORE_URL is not set)")
    return LocalAccount(store, hooks.http, hooks.before_request)


class LocalAccount:
    def __init__(self, store_url: str, http: httpx.Client | None = None,
                 before_request: BeforeRequest | None = None) -> None:  # fmt: skip
        self.store = store_url.rstrip("/")
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=30)
        self.before_request = before_request

    def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        if self.before_request is not None:
            self.before_request()
        response = self.http.request(method, f"{self.store}{path}", **kwargs)  # type: ignore[arg-type]
        if response.status_code >= 400:
            raise error_for(response)
        return response

    def list_calendars(self) -> list[CalendarInfo]:
        found = self._call("GET", "/_store/calendars").json()["calendars"]
        return [CalendarInfo(c["name"], c["name"], bool(c["readOnly"]))
                for c in found if not str(c["name"]).startswith(WIX_PREFIX)]  # fmt: skip

    def calendar(self, info: CalendarInfo, window: SyncWindow) -> LocalCalendar:
        return LocalCalendar(self.store, info.remote_id, self.http, read_only=info.read_only,
                             before_request=self.before_request, window=window)  # fmt: skip

    def create_calendar(self, name: str, key: str) -> CalendarInfo:
        """A store calendar named after `key` (adding one that exists is a no-op)."""
        remote_id = f"calsync-{key[:12]}"
        self._call("POST", "/_store/calendars", json={"name": remote_id})
        return CalendarInfo(remote_id=remote_id, name=name)

    def open_channel(self, calendar_id: str, address: str) -> Channel:
        """The store then posts a notification signed with the channel's secret after every
        change of the calendar."""
        channel_id, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
        self._call("POST", "/_store/channels", json={
            "id": channel_id, "calendar": calendar_id, "address": address, "secret": secret,
        })  # fmt: skip
        expires = datetime.now(UTC) + timedelta(days=CHANNEL_DAYS)
        return Channel(channel_id, calendar_id, secret, expires)

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        fresh = self.open_channel(channel.resource_id or calendar_id, address)
        with contextlib.suppress(ProviderError):
            self.stop_channel(channel)
        return fresh

    def stop_channel(self, channel: Channel) -> None:
        response = self.http.delete(
            f"{self.store}/_store/channels/{quote(channel.channel_id, safe='')}"
        )
        if response.status_code >= 400 and response.status_code != 404:
            raise error_for(response)

    def refresh_credentials(self) -> Credentials:
        raise NotImplementedError("the local store has no credentials")

    def close(self) -> None:
        if self._own_http:
            self.http.close()
