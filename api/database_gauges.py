"""Gauges read from the database at scrape time, each by an index so a scrape stays cheap on
large tables: connections, inbox backlog and lag, dead letters, conflicts, push channels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection as Db
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import InstrumentedAttribute

from config import Settings
from models import (
    ChannelStatus,
    Conflict,
    ConflictStatus,
    Connection,
    DeadLetter,
    InboxItem,
    InboxStatus,
    PushChannel,
)
from models.types import utcnow

# Sync lag is read from the notifications applied this recently, among the newest inbox rows.
LAG_WINDOW = timedelta(minutes=5)
LAG_ROWS = 5000
LAG_QUANTILES = (0.5, 0.95, 1.0)
WAITING = (InboxStatus.RECEIVED, InboxStatus.ENQUEUED)


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        with self.engine.connect() as db:
            yield from _by_status(db, Connection.status, "calsync_connections",
                                  "Connections by status")  # fmt: skip
            yield from _by_status(db, InboxItem.status, "calsync_inbox_items",
                                  "Inbox items by status")  # fmt: skip
            yield from _by_status(db, DeadLetter.status, "calsync_dead_letters",
                                  "Changes that kept failing (PARKED: skipped)")  # fmt: skip
            yield from _open_conflicts(db)
            yield from _lag(db)
            yield from _channels(db, timedelta(seconds=self.settings.channel_renew_before))


def _by_status(db: Db, status: InstrumentedAttribute[Any], name: str, documentation: str
               ) -> Iterator[Metric]:  # fmt: skip
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for value, count in db.execute(select(status, func.count()).group_by(status)):
        family.add_metric([str(value)], count)
    yield family


def _open_conflicts(db: Db) -> Iterator[Metric]:
    count = db.scalar(select(func.count()).where(Conflict.status == ConflictStatus.OPEN))
    yield GaugeMetricFamily("calsync_open_conflicts", "Conflicts not yet acknowledged",
                            value=count or 0)  # fmt: skip


def _lag(db: Db) -> Iterator[Metric]:
    """How long changes waited from their notification to being applied (the lag a sync run
    records), and how long the oldest change still waiting has waited so far."""
    now = utcnow()
    oldest = db.scalar(select(func.min(InboxItem.received_at)).where(InboxItem.status.in_(WAITING)))
    yield GaugeMetricFamily(
        "calsync_oldest_waiting_change_seconds",
        "Age of the oldest notification not yet applied (0: none waiting)",
        value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )
    newest = db.scalar(select(func.max(InboxItem.id))) or 0
    rows = db.execute(
        select(InboxItem.received_at, InboxItem.processed_at).where(
            InboxItem.id > newest - LAG_ROWS, InboxItem.status == InboxStatus.DONE,
            InboxItem.processed_at >= now - LAG_WINDOW,
        )
    ).all()  # fmt: skip
    lags = sorted((done - received).total_seconds() for received, done in rows if done)
    family = GaugeMetricFamily(
        "calsync_sync_lag_seconds",
        "Notification to change applied, over the changes applied in the last 5 minutes",
        labels=["quantile"],
    )
    for quantile in LAG_QUANTILES if lags else ():
        family.add_metric([str(quantile)], _quantile(lags, quantile))
    yield family


def _quantile(ordered: Sequence[float], quantile: float) -> float:
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _channels(db: Db, renew_before: timedelta) -> Iterator[Metric]:
    """Push channels about to lapse: a renewal that keeps failing shows here before changes
    stop arriving."""
    now = utcnow()
    active = PushChannel.status == ChannelStatus.ACTIVE
    soonest = db.scalar(select(func.min(PushChannel.expires_at)).where(active))
    due = PushChannel.expires_at.between(now, now + renew_before)
    expiring = db.scalar(select(func.count()).where(active, due, PushChannel.expires_at > now))
    expired = db.scalar(select(func.count()).where(active, PushChannel.expires_at <= now))
    if soonest is not None:
        yield GaugeMetricFamily(
            "calsync_push_channel_next_expiry_seconds",
            "Seconds until the soonest active push channel expires (negative: lapsed)",
            value=(soonest - now).total_seconds(),
        )
    yield GaugeMetricFamily(
        "calsync_push_channels_expiring",
        "Active push channels expiring within CALSYNC_CHANNEL_RENEW_BEFORE (due for renewal)",
        value=expiring or 0,
    )
    yield GaugeMetricFamily(
        "calsync_push_channels_expired",
        "Active push channels already past their expiry (renewal missed)", value=expired or 0,
    )
