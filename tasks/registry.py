"""Which provider objects serve a connection's two sides, with quotas and call counting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from models import Connection, ExternalCalendar, Provider, Tenant
from providers.base import CalendarProvider, RateLimited
from providers.local import LocalCalendar
from providers.wix import WixApp
from providers.wix_http import TokenCache, system_clock
from sync.side import Side
from tasks.accounts import caldav_account, google_account, microsoft_account, sync_window
from tasks.context import WorkerContext
from tasks.throttle import Quota

# The provider name a Wix busy block carries (Wix's own provider ids for the tag).
TAGS = {Provider.GOOGLE: "google", Provider.MICROSOFT: "microsoft", Provider.APPLE: "apple",
        Provider.CALDAV: "caldav", Provider.LOCAL: "local"}  # fmt: skip
# A wait longer than this is not slept in a worker: the run is retried later instead.
MAX_INLINE_WAIT = 2.0


class NoProvider(LookupError):
    pass


@dataclass
class CallCounter:
    calls: int = 0


def quota_for(context: WorkerContext, provider: str) -> Quota:
    rate = float(getattr(context.settings, f"{provider}_requests_per_second"))
    return Quota(rate=rate, burst=max(1, int(rate)))


def throttled(context: WorkerContext, account: str, provider: str, counter: CallCounter
              ) -> Callable[[], None]:  # fmt: skip
    """Before each request: take a token from the account's bucket, or give up for now."""
    quota = quota_for(context, provider)

    def before_request() -> None:
        wait = context.throttle.take(account, quota)
        if wait > MAX_INLINE_WAIT:
            raise RateLimited(f"{account} is over its quota", retry_after=wait)
        if wait > 0:
            time.sleep(wait)
        counter.calls += 1

    return before_request


def providers_for(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar
) -> tuple[dict[Side, CalendarProvider], CallCounter]:
    counter = CallCounter()
    return {
        Side.WIX: _wix_side(context, connection, counter),
        Side.EXTERNAL: _external_side(context, connection, calendar, counter),
    }, counter


def _wix_side(context: WorkerContext, connection: Connection, counter: CallCounter
              ) -> CalendarProvider:  # fmt: skip
    store = context.settings.wix_local_store_url
    if store:
        hook = throttled(context, f"wix:{connection.tenant_id}", "local", counter)
        return LocalCalendar(store, f"wix-{connection.schedule_id}", context.http,
                             before_request=hook)  # fmt: skip
    if not context.settings.wix_app_id:
        raise NoProvider("the Wix app is not configured (CALSYNC_WIX_APP_ID)")
    hook = throttled(context, f"wix:{connection.tenant_id}", "wix", counter)
    app = WixApp.from_settings(context.settings, context.http, hook, tokens=_wix_tokens())
    with context.sessions() as db:
        tenant = db.get(Tenant, connection.tenant_id)
        assert tenant is not None, "a connection belongs to a tenant"
        instance_id = tenant.wix_instance_id
    return app.schedule(instance_id, connection.schedule_id, sync_window(context.settings),
                        TAGS[connection.provider])  # fmt: skip


@lru_cache(maxsize=1)
def _wix_tokens() -> TokenCache:
    """The worker process's Wix app tokens, one per site, shared by every run."""
    return TokenCache(system_clock)


def _external_side(
    context: WorkerContext, connection: Connection, calendar: ExternalCalendar,
    counter: CallCounter,
) -> CalendarProvider:  # fmt: skip
    account = f"{connection.provider.value}:{connection.id}"
    provider = connection.provider
    if provider is Provider.LOCAL:
        assert connection.server_url, "a local connection names its store"
        hook = throttled(context, account, "local", counter)
        return LocalCalendar(connection.server_url, calendar.remote_id, context.http,
                             read_only=calendar.read_only, before_request=hook)  # fmt: skip
    window = sync_window(context.settings)
    if provider is Provider.GOOGLE:
        hook = throttled(context, account, "google", counter)
        google = google_account(context, connection, hook)
        return google.calendar(calendar.remote_id, window, calendar.read_only)
    if provider is Provider.MICROSOFT:
        hook = throttled(context, account, "microsoft", counter)
        outlook = microsoft_account(context, connection, hook)
        return outlook.calendar(calendar.remote_id, window, calendar.read_only,
                                primary=calendar.is_primary)  # fmt: skip
    if provider in (Provider.CALDAV, Provider.APPLE):
        hook = throttled(context, account, "caldav", counter)
        server = caldav_account(context, connection, hook)
        return server.calendar(calendar.remote_id, window, calendar.read_only)
    raise NoProvider(f"no provider for {provider.value}")
