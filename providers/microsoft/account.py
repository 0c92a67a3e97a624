"""One Microsoft 365 / Outlook mailbox, on the O365 package and Microsoft Graph v1.0: its
calendars, a dedicated calendar, its change-notification subscriptions (the push channels), and
a `MicrosoftCalendar` for each calendar that syncs.

O365 supplies the connection (its `MSGraphProtocol` aimed at the configured Graph base URL) and
subscriptions; what it lacks is done over that connection: delta queries, `If-Match`, extended
properties, occurrences (see docs/microsoft.md)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

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
from providers.errors import NotFound, PreconditionFailed
from providers.microsoft.auth import MicrosoftAuth, MicrosoftTokens
from providers.microsoft.calendar import DEFAULT_PAGE_SIZE, MicrosoftCalendar
from providers.microsoft.http import GraphClient, TokensSaved
from providers.microsoft.subscriptions import EVENTS_RESOURCE, renew, subscribe, unsubscribe

# Graph's limit for Outlook event subscriptions is 10,080 minutes now and was 4,230: stay inside
# the smaller one; calsync renews a day (`channel_renew_before`) earlier still.
SUBSCRIPTION_MINUTES = 4_200


def open_account(settings: Settings, source: AccountSource, hooks: AccountHooks
                 ) -> MicrosoftAccount:  # fmt: skip
    """The mailbox a connection's stored tokens open, with calsync's MSAL client."""
    on_credentials = hooks.on_credentials

    def keep(tokens: MicrosoftTokens) -> None:
        if on_credentials is not None:
            on_credentials(Credentials(tokens.to_dict(), tokens.expires_at))

    return MicrosoftAccount.from_settings(
        MicrosoftTokens.from_dict(dict(source.credentials)), settings,
        before_request=hooks.before_request, on_tokens=keep,
    )  # fmt: skip


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
        self.auth = auth
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

    def create_calendar(self, name: str, key: str = "") -> CalendarInfo:
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
        self, info: CalendarInfo, window: SyncWindow, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> MicrosoftCalendar:
        return MicrosoftCalendar(
            self.client,
            info.remote_id,
            window,
            read_only=info.read_only,
            primary=info.primary,
            page_size=page_size,
        )

    # -- subscriptions: Graph's push channels -------------------------------------------------

    def open_channel(self, calendar_id: str, address: str) -> Channel:
        """A subscription to the mailbox's events (the only event resource Graph documents, so
        `calendar_id` does not narrow it); Graph runs its validation handshake on `address` and
        on `<address>/lifecycle` before it answers. The clientState every notification must
        carry is a fresh random secret."""
        client_state = secrets.token_urlsafe(32)  # Graph allows up to 128 characters
        made = subscribe(self.client, EVENTS_RESOURCE, address, f"{address}/lifecycle",
                         client_state, _expiry())  # fmt: skip
        return Channel(made.id, made.resource, client_state, made.expires_at)

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        """A PATCH of the expiry on the same subscription, which also reauthorizes it: the id,
        clientState and lifecycle URL stay, with no second handshake and never two
        subscriptions delivering every change twice. One Graph removed is made anew."""
        try:
            renewed = renew(self.client, channel.channel_id, _expiry())
        except NotFound:
            return self.open_channel(calendar_id, address)
        return replace(channel, expires_at=renewed.expires_at)

    def stop_channel(self, channel: Channel) -> None:
        unsubscribe(self.client, channel.channel_id)  # a 404 counts as done

    def refresh_credentials(self) -> Credentials:
        fresh = self.auth.refresh(self.tokens)
        return Credentials(fresh.to_dict(), fresh.expires_at)


def _expiry() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=SUBSCRIPTION_MINUTES)


def _calendar_info(raw: dict[str, Any]) -> CalendarInfo:
    return CalendarInfo(
        remote_id=str(raw["id"]),
        name=str(raw.get("name") or ""),
        read_only=not raw.get("canEdit", False),
        primary=bool(raw.get("isDefaultCalendar")),
    )
