"""Beat's token refreshes: OAuth access tokens are renewed before they expire, so a sync never
starts with a stale one, and a refresh refused for good puts the connection in ERROR /
TOKEN_REVOKED at once instead of at the next sync.

(Providers also refresh by themselves when a token turns out to be expired mid-run.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from celery import shared_task
from sqlalchemy import select

from models import Connection, Provider
from models.types import utcnow
from providers.base import PermanentError, ProviderError
from providers.google_auth import GoogleTokens
from providers.google_auth import refresh as refresh_google
from providers.microsoft_auth import MicrosoftAuth, MicrosoftTokens
from tasks.accounts import google_client, save_credentials
from tasks.calendar_sync import mark_connection_error
from tasks.context import WorkerContext, worker_context
from tasks.maintenance import ACTIVE

log = logging.getLogger(__name__)
Refresher = Callable[[WorkerContext, Connection], tuple[dict[str, object], datetime]]


def _google(context: WorkerContext, connection: Connection) -> tuple[dict[str, object], datetime]:
    tokens = GoogleTokens.from_dict(connection.credentials or {})
    fresh = refresh_google(tokens, google_client(context.settings), http=context.http)
    return fresh.to_dict(), fresh.expiry


def _microsoft(context: WorkerContext, connection: Connection
               ) -> tuple[dict[str, object], datetime]:  # fmt: skip
    tokens = MicrosoftTokens.from_dict(connection.credentials or {})
    fresh = MicrosoftAuth.from_settings(context.settings).refresh(tokens)
    return fresh.to_dict(), fresh.expires_at


REFRESHERS: dict[Provider, Refresher] = {Provider.GOOGLE: _google, Provider.MICROSOFT: _microsoft}


@shared_task(name="tasks.maintenance.refresh_tokens")
def refresh_tokens() -> dict[str, int]:
    return refresh_expiring(worker_context())


def refresh_expiring(context: WorkerContext, now: datetime | None = None) -> dict[str, int]:
    horizon = (now or utcnow()) + timedelta(seconds=context.settings.token_refresh_before)
    with context.sessions() as db:
        due = db.scalars(
            select(Connection).where(
                Connection.provider.in_(list(REFRESHERS)), Connection.status.in_(ACTIVE),
                Connection.token_expires_at.is_not(None), Connection.token_expires_at < horizon,
            )
        ).all()  # fmt: skip
    counts = {"refreshed": 0, "revoked": 0, "failed": 0}
    for connection in due:
        counts[_refresh(context, connection)] += 1
    return counts


def _refresh(context: WorkerContext, connection: Connection) -> str:
    try:
        credentials, expires_at = REFRESHERS[connection.provider](context, connection)
    except PermanentError as error:
        mark_connection_error(context, connection.id, error)
        return "revoked"
    except ProviderError as error:  # the next round, or the sync itself, tries again
        log.warning("token refresh failed", extra={"connection_id": connection.id,
                                                   "error": type(error).__name__})  # fmt: skip
        return "failed"
    save_credentials(context, connection.id, credentials, expires_at)
    return "refreshed"
