"""Beat's token refreshes: OAuth access tokens are renewed before they expire, so a sync never
starts with a stale one, and a refresh refused for good puts the connection in ERROR /
TOKEN_REVOKED at once instead of at the next sync.

(Accounts also refresh by themselves when a token turns out to be expired mid-run.)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from sqlalchemy import select

from models import Connection
from models.types import utcnow
from providers import registry
from providers.errors import PermanentError, ProviderError
from tasks.accounts import account, save_credentials
from tasks.context import WorkerContext, worker_context
from tasks.failures import mark_refused
from tasks.maintenance import ACTIVE

log = logging.getLogger(__name__)


@shared_task(name="tasks.maintenance.refresh_tokens")
def refresh_tokens() -> dict[str, int]:
    return refresh_expiring(worker_context())


def refresh_expiring(context: WorkerContext, now: datetime | None = None) -> dict[str, int]:
    horizon = (now or utcnow()) + timedelta(seconds=context.settings.token_refresh_before)
    with context.sessions() as db:
        due = db.scalars(
            select(Connection).where(
                Connection.provider.in_(registry.with_oauth(context.settings)),
                Connection.status.in_(ACTIVE), Connection.token_expires_at.is_not(None),
                Connection.token_expires_at < horizon,
            )
        ).all()  # fmt: skip
    counts = {"refreshed": 0, "revoked": 0, "failed": 0}
    for connection in due:
        counts[_refresh(context, connection)] += 1
    return counts


def _refresh(context: WorkerContext, connection: Connection) -> str:
    try:
        with account(context, connection) as opened:
            credentials = opened.refresh_credentials()
    except PermanentError as error:
        mark_refused(context, connection.id, error)
        return "revoked"
    except ProviderError as error:  # the next round, or the sync itself, tries again
        log.warning("token refresh failed", extra={"connection_id": connection.id,
                                                   "error": type(error).__name__})  # fmt: skip
        return "failed"
    save_credentials(context, connection.id, credentials)
    return "refreshed"
