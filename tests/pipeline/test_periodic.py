"""Beat's work: due connections spread evenly and claimed once; sweeps; retention."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from models import (
    Connection,
    ExternalCalendar,
    InboxItem,
    InboxStatus,
    Provider,
    RunStatus,
    SyncRun,
    Tenant,
)
from models.db import session_scope
from models.slots import first_due, next_due
from models.types import utcnow
from tasks.context import WorkerContext
from tasks.maintenance import claim_due, dispatch_due, prune_old

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
SIX_HOURS = 6 * 3600


def test_100000_connections_spread_evenly_over_the_interval() -> None:
    rng = random.Random(7)
    slots = [first_due(NOW, SIX_HOURS, rng) for _ in range(100_000)]
    firings = list(slots)
    for _ in range(5):  # every connection runs when due and books its next slot
        slots = [next_due(slot, SIX_HOURS, rng) for slot in slots]
        firings += slots
    window_start = NOW + timedelta(hours=12)  # well past start-up: the steady state
    per_minute = Counter(
        int((s - window_start).total_seconds() // 60)
        for s in firings if window_start <= s < window_start + timedelta(hours=6)
    )  # fmt: skip
    mean = sum(per_minute.values()) / 360
    assert len(per_minute) == 360
    assert max(per_minute.values()) < mean * 1.25
    assert min(per_minute.values()) > mean * 0.75


def add_connection(engine: Engine, provider: Provider, reconcile: datetime | None,
                   poll: datetime | None = None) -> str:  # fmt: skip
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id=uuid.uuid4().hex)
        db.add(tenant)
        db.flush()
        connection = Connection(tenant_id=tenant.id, provider=provider, schedule_id="s",
                                next_reconcile_at=reconcile, next_poll_at=poll)  # fmt: skip
        db.add(connection)
        db.flush()
        db.add(ExternalCalendar(connection_id=connection.id, remote_id="c", import_enabled=True))
        return connection.id


def test_dispatch_enqueues_due_work_and_moves_it_on(context: WorkerContext, engine: Engine) -> None:
    now = utcnow()
    due = add_connection(engine, Provider.LOCAL, now - timedelta(minutes=1))
    later = add_connection(engine, Provider.LOCAL, now + timedelta(hours=1))
    polled = add_connection(engine, Provider.CALDAV, now + timedelta(hours=1), now)
    assert dispatch_due(context, now) == {"reconciled": 1, "polled": 1}
    with session_scope(engine) as db:
        moved = db.get(Connection, due)
        untouched = db.get(Connection, later)
        poll = db.get(Connection, polled)
        assert moved and untouched and poll and moved.next_reconcile_at and poll.next_poll_at
        assert moved.next_reconcile_at > now + timedelta(hours=5)
        assert untouched.next_reconcile_at == now + timedelta(hours=1)
        assert poll.next_poll_at > now + timedelta(seconds=100)
    assert dispatch_due(context, now) == {"reconciled": 0, "polled": 0}  # nothing fires twice


def test_a_backlog_larger_than_a_batch_drains_in_one_tick(
    context: WorkerContext, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tasks.maintenance.BATCH", 3)
    now = utcnow()
    for _ in range(7):
        add_connection(engine, Provider.LOCAL, now - timedelta(hours=2))
    for _ in range(4):
        add_connection(engine, Provider.CALDAV, now + timedelta(hours=1), now)
    assert dispatch_due(context, now) == {"reconciled": 7, "polled": 4}
    assert dispatch_due(context, now) == {"reconciled": 0, "polled": 0}


def test_two_dispatchers_never_claim_the_same_connection(engine: Engine) -> None:
    now = utcnow()
    for _ in range(6):
        add_connection(engine, Provider.LOCAL, now - timedelta(minutes=1))
    with session_scope(engine) as first, session_scope(engine) as second:
        mine = claim_due(first, Connection.next_reconcile_at, now, SIX_HOURS, limit=4)
        theirs = claim_due(second, Connection.next_reconcile_at, now, SIX_HOURS, limit=4)
        assert len(mine) == 4 and len(theirs) == 2
        assert {c.id for c in mine}.isdisjoint({c.id for c in theirs})


def test_prune_keeps_recent_records(context: WorkerContext, engine: Engine) -> None:
    connection_id = add_connection(engine, Provider.LOCAL, None)
    now = utcnow()
    with session_scope(engine) as db:
        for age, status in (
            (30, InboxStatus.DONE),
            (1, InboxStatus.DONE),
            (30, InboxStatus.RECEIVED),
        ):
            db.add(InboxItem(provider="local", idempotency_key=uuid.uuid4().hex, status=status,
                             received_at=now - timedelta(days=age)))  # fmt: skip
        for age in (90, 2):
            started = now - timedelta(days=age)
            db.add(SyncRun(connection_id=connection_id, kind="full", trigger="reconcile",
                           status=RunStatus.SUCCEEDED, started_at=started))  # fmt: skip
    assert prune_old(context, now) == {"inbox": 1, "sync_runs": 1}
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(InboxItem)) == 2  # unprocessed stays
        assert db.scalar(select(func.count()).select_from(SyncRun)) == 1
