"""The two sides of a synced calendar as provider objects: the Wix schedule and the external
calendar, each behind its account's quota and counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache

from models import Connection, ExternalCalendar, Tenant
from providers import registry
from providers.base import CalendarProvider
from providers.errors import RateLimited
from providers.local.calendar import LocalCalendar
from providers.wix.account import WixApp
from providers.wix.http import TokenCache, system_clock
from sync.side import Side
from tasks.accounts import calendar_info, open_account, sync_window
from tasks.context import WorkerContext
from tasks.provider_calls import WIX, calls_of, metered_calendar
from tasks.throttle import Quota

# A wait longer than this is not slept in a worker: the run is retried later instead.
MAX_INLINE_WAIT = 2.0


class NoProvider(LookupError):
    pass


@dataclass
class Sides:
    """The providers of one run, the calls they made, and what to close afterwards."""

    providers: dict[Side, CalendarProvider] = field(default_factory=dict)
    calls: int = 0
    closing: ExitStack = field(default_factory=ExitStack)

    def count(self) -> None:
        self.calls += 1

    def close(self) -> None:
        self.closing.close()


def quota_for(context: WorkerContext, quota: str) -> Quota:
    rate = context.settings.request_rate(quota)
    return Quota(rate=rate, burst=max(1, int(rate)))


def throttled(context: WorkerContext, account: str, quota: str, count: Callable[[], None]
              ) -> Callable[[], None]:  # fmt: skip
    """Before each request: take a token from the account's bucket, or give up for now."""
    limit = quota_for(context, quota)

    def before_request() -> None:
        wait = context.throttle.take(account, limit)
        if wait > MAX_INLINE_WAIT:
            raise RateLimited(f"{account} is over its quota", retry_after=wait)
        if wait > 0:
            time.sleep(wait)
        count()

    return before_request


def sides_for(context: WorkerContext, connection: Connection, calendar: ExternalCalendar) -> Sides:
    sides = Sides()
    try:
        sides.providers[Side.WIX] = _wix_side(context, connection, sides.count)
        sides.providers[Side.EXTERNAL] = _external_side(context, connection, calendar, sides)
    except BaseException:
        sides.close()
        raise
    return sides


def _wix_side(context: WorkerContext, connection: Connection, count: Callable[[], None]
              ) -> CalendarProvider:  # fmt: skip
    store = context.settings.wix_local_store_url
    if store:
        hook = throttled(context, f"wix:{connection.tenant_id}", "local", count)
        stand_in = LocalCalendar(store, f"wix-{connection.schedule_id}", context.http,
                                 before_request=hook)  # fmt: skip
        return metered_calendar(stand_in, WIX, calls_of(context))
    if not context.settings.wix_app_id:
        raise NoProvider("the Wix app is not configured (CALSYNC_WIX_APP_ID)")
    hook = throttled(context, f"wix:{connection.tenant_id}", "wix", count)
    app = WixApp.from_settings(context.settings, context.http, hook, tokens=wix_tokens())
    with context.sessions() as db:
        tenant = db.get(Tenant, connection.tenant_id)
        assert tenant is not None, "a connection belongs to a tenant"
        instance_id = tenant.wix_instance_id
    tag = registry.entry(connection.provider, context.settings).id
    schedule = app.schedule(instance_id, connection.schedule_id, sync_window(context.settings),
                            tag)  # fmt: skip
    return metered_calendar(schedule, WIX, calls_of(context))


@lru_cache(maxsize=1)
def wix_tokens() -> TokenCache:
    """The worker process's Wix app tokens, one per site, shared by every run."""
    return TokenCache(system_clock)


def _external_side(context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
                   sides: Sides) -> CalendarProvider:  # fmt: skip
    try:
        entry = registry.entry(connection.provider, context.settings)
    except registry.UnknownProvider as error:
        raise NoProvider(str(error)) from None
    hook = throttled(context, f"{entry.id}:{connection.id}", entry.quota, sides.count)
    account = open_account(context, connection, before_request=hook)
    sides.closing.callback(account.close)
    return account.calendar(calendar_info(calendar), sync_window(context.settings))
