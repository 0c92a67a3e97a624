"""Push channels are renewed before they expire: the new one first, then the old one stopped."""

from __future__ import annotations

from datetime import timedelta

from harness.pipeline import Pair
from sqlalchemy import Engine, func, select

from models import ChannelStatus, ExternalCalendar, InboxItem, PushChannel
from models.db import session_scope
from models.types import utcnow
from sandbox.server import ServedApp
from tasks.channels import renew_expiring
from tasks.context import WorkerContext


def test_an_expiring_channel_is_replaced_without_a_gap(
    watched: Pair, api: ServedApp, context: WorkerContext, engine: Engine
) -> None:
    context.settings = context.settings.model_copy(update={"public_base_url": api.base_url})
    with session_scope(engine) as db:
        soon = db.scalars(
            select(PushChannel).where(PushChannel.resource_id == watched.external)
        ).one()
        soon.expires_at = utcnow() + timedelta(hours=1)
        old_id = soon.channel_id
    assert renew_expiring(context) == 1
    assert renew_expiring(context) == 0  # the new one is far from expiry
    with session_scope(engine) as db:
        rows = {c.channel_id: c for c in db.scalars(select(PushChannel))}
        assert rows[old_id].status is ChannelStatus.STOPPED
        fresh = [c for c in rows.values() if c.status is ChannelStatus.ACTIVE
                 and c.resource_id == watched.external]  # fmt: skip
        assert len(fresh) == 1 and fresh[0].expires_at > utcnow() + timedelta(days=6)
    assert old_id not in watched.store.pusher.channels
    assert fresh[0].channel_id in watched.store.pusher.channels

    watched.person_adds(watched.external, "After the renewal")
    watched.store.pusher.wait_idle()
    assert watched.store.pusher.delivered[-1][2] == 200
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(InboxItem)) == 1


def test_a_channel_nothing_syncs_any_more_is_stopped_not_renewed(
    watched: Pair, api: ServedApp, context: WorkerContext, engine: Engine
) -> None:
    context.settings = context.settings.model_copy(update={"public_base_url": api.base_url})
    with session_scope(engine) as db:
        channel = db.scalars(
            select(PushChannel).where(PushChannel.resource_id == watched.external)
        ).one()
        channel.expires_at = utcnow() + timedelta(hours=1)
        calendar = db.get(ExternalCalendar, channel.calendar_id)
        assert calendar is not None
        calendar.import_enabled = calendar.export_target = False
        orphan_id = channel.channel_id
    assert renew_expiring(context) == 0
    with session_scope(engine) as db:
        rows = list(db.scalars(select(PushChannel).where(
            PushChannel.resource_id == watched.external)))  # fmt: skip
        assert [(c.channel_id, c.status) for c in rows] == [(orphan_id, ChannelStatus.STOPPED)]
    assert orphan_id not in watched.store.pusher.channels
