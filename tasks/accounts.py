"""A connection's provider account, built from its stored (encrypted) credentials.

Refreshed OAuth tokens are written back at once, in their own transaction, so a worker that
dies later does not lose them and the next run does not refresh again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from config import Settings
from models import Connection
from models.types import utcnow
from providers.base import BeforeRequest, SyncWindow
from providers.caldav import APPLE_URL, CalDAVAccount
from providers.google import GoogleAccount
from providers.google_auth import GoogleOAuthClient, GoogleTokens
from providers.microsoft import MicrosoftAccount
from providers.microsoft_auth import MicrosoftTokens
from tasks.context import WorkerContext


def sync_window(settings: Settings, now: datetime | None = None) -> SyncWindow:
    now = now or utcnow()
    return SyncWindow(
        now - timedelta(days=settings.sync_window_past_days),
        now + timedelta(days=settings.sync_window_future_days),
    )


def google_client(settings: Settings, before_request: BeforeRequest | None = None
                  ) -> GoogleOAuthClient:  # fmt: skip
    return GoogleOAuthClient(
        settings.google_client_id, settings.google_client_secret.get_secret_value(),
        str(settings.google_token_url), before_request=before_request,
    )  # fmt: skip


def google_account(
    context: WorkerContext, connection: Connection, before_request: BeforeRequest | None = None
) -> GoogleAccount:
    settings = context.settings
    connection_id = connection.id

    def keep(tokens: GoogleTokens) -> None:
        save_credentials(context, connection_id, tokens.to_dict(), tokens.expiry)

    return GoogleAccount(
        GoogleTokens.from_dict(connection.credentials or {}),
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value(),
        token_url=str(settings.google_token_url),
        api_base_url=str(settings.google_api_base_url),
        before_request=before_request,
        on_tokens=keep,
    )


def microsoft_account(
    context: WorkerContext, connection: Connection, before_request: BeforeRequest | None = None
) -> MicrosoftAccount:
    connection_id = connection.id

    def keep(tokens: MicrosoftTokens) -> None:
        save_credentials(context, connection_id, tokens.to_dict(), tokens.expires_at)

    return MicrosoftAccount.from_settings(
        MicrosoftTokens.from_dict(connection.credentials or {}), context.settings,
        before_request=before_request, on_tokens=keep,
    )  # fmt: skip


def caldav_account(
    context: WorkerContext, connection: Connection, before_request: BeforeRequest | None = None
) -> CalDAVAccount:
    """A CalDAV server's account (Apple: iCloud, found from its well-known URL)."""
    settings, secret = context.settings, connection.credentials or {}
    url = connection.server_url or (str(settings.apple_caldav_url) or APPLE_URL)
    return CalDAVAccount(
        url, str(secret.get("username", "")), str(secret.get("password", "")),
        before_request=before_request, allow_private=settings.caldav_allow_private,
        max_concurrent=settings.caldav_max_concurrent_requests,
    )  # fmt: skip


def save_credentials(
    context: WorkerContext, connection_id: str, credentials: dict[str, object],
    expires_at: datetime | None,
) -> None:  # fmt: skip
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is not None:
            connection.credentials = dict(credentials)
            connection.token_expires_at = expires_at
