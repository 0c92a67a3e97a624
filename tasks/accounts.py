"""A connection's account at its calendar system, opened through the registry from the stored
(encrypted) credentials.

Refreshed credentials are written back at once, in their own transaction, so a worker that
dies later does not lose them and the next run does not refresh again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from config import Settings
from models import Connection, ExternalCalendar
from models.types import utcnow
from providers import registry
from providers.base import (
    AccountHooks,
    AccountSource,
    BeforeRequest,
    CalendarAccount,
    CalendarInfo,
    Credentials,
    SyncWindow,
)
from tasks.context import WorkerContext
from tasks.provider_calls import MeteredAccount, calls_of


def sync_window(settings: Settings, now: datetime | None = None) -> SyncWindow:
    now = now or utcnow()
    return SyncWindow(
        now - timedelta(days=settings.sync_window_past_days),
        now + timedelta(days=settings.sync_window_future_days),
    )


def source_of(connection: Connection) -> AccountSource:
    return AccountSource(connection.id, str(connection.provider), connection.credentials or {},
                         connection.server_url)  # fmt: skip


def calendar_info(calendar: ExternalCalendar) -> CalendarInfo:
    return CalendarInfo(calendar.remote_id, calendar.name or "", calendar.read_only,
                        calendar.is_primary)  # fmt: skip


def open_account(
    context: WorkerContext, connection: Connection, *, system: str | None = None,
    before_request: BeforeRequest | None = None,
) -> CalendarAccount:  # fmt: skip
    """The connection's account (or its account at `system`: the local store standing in for
    the Wix side has channels of its own)."""
    connection_id = connection.id

    def keep(credentials: Credentials) -> None:
        save_credentials(context, connection_id, credentials)

    hooks = AccountHooks(context.http, before_request, keep)
    entry = registry.entry(system or connection.provider, context.settings)
    opened = entry.open_account(context.settings, source_of(connection), hooks)
    return MeteredAccount(opened, entry.id, calls_of(context))  # every call timed for /metrics


@contextmanager
def account(context: WorkerContext, connection: Connection, *, system: str | None = None
            ) -> Iterator[CalendarAccount]:  # fmt: skip
    """`open_account`, closed afterwards."""
    opened = open_account(context, connection, system=system)
    try:
        yield opened
    finally:
        opened.close()


def save_credentials(context: WorkerContext, connection_id: str, credentials: Credentials
                     ) -> None:  # fmt: skip
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id)
        if connection is not None:
            connection.credentials = dict(credentials.data)
            connection.token_expires_at = credentials.expires_at
