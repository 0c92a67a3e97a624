"""A connection's Wix schedule for a task that is not a sync run (its owner, its overrides):
the site's API behind the tenant's Wix quota, and the schedule's id. There is none without a
Wix app (the local store standing in for Wix) or for a disconnected connection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from models import Connection, ConnectionStatus, ExternalCalendar, Tenant
from providers.wix.account import WixApp
from providers.wix.http import WixInstance
from tasks.context import WorkerContext
from tasks.sides import throttled, wix_tokens


class NotAtWix(Exception):
    """Nothing to do at Wix for this connection; the message says why."""


@dataclass(frozen=True)
class ScheduleAtWix:
    api: WixInstance
    schedule_id: str
    exporting: list[str]  # the ExternalCalendar ids receiving the schedule's sessions


def schedule_at_wix(context: WorkerContext, connection_id: str) -> ScheduleAtWix:
    settings = context.settings
    if settings.wix_local_store_url or not settings.wix_app_id:
        raise NotAtWix("no Wix app")
    with context.sessions() as db:
        connection = db.get(Connection, connection_id)
        if connection is None or connection.status is ConnectionStatus.DISCONNECTED:
            raise NotAtWix("disconnected")
        tenant = db.get(Tenant, connection.tenant_id)
        assert tenant is not None, "a connection belongs to a tenant"
        exporting = list(
            db.scalars(
                select(ExternalCalendar.id).where(
                    ExternalCalendar.connection_id == connection_id, ExternalCalendar.export_target
                )
            )
        )
        hook = throttled(context, f"wix:{connection.tenant_id}", "wix", _not_a_run)
        app = WixApp.from_settings(settings, context.http, hook, tokens=wix_tokens())
        return ScheduleAtWix(app.instance(tenant.wix_instance_id), connection.schedule_id,
                             exporting)  # fmt: skip


def _not_a_run() -> None:
    """No sync run's call count to add to."""
