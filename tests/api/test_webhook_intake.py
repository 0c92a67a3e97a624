"""Group commit of push notices (`api/webhooks/intake.py`) on the real app, PostgreSQL and
Redis: the notices of many requests recorded by one statement, each request told the fate of
its own, and every acknowledged notice in the inbox."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy
from conftest import Queued, TenantKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError

from api.webhooks import intake as intake_module
from api.webhooks.intake import Entry, Fate, take
from models import ChannelStatus, Connection, ExternalCalendar, InboxItem, Provider, PushChannel
from models.db import session_scope
from models.notifications import Arrival
from models.types import utcnow
from providers.push import ChannelEvent

HOOK = "/webhooks/google"
SYNC = "tasks.calendar_sync.sync_calendar"


@dataclass(frozen=True)
class Watched:
    calendar_id: str
    channel_id: str
    token: str


def watch(engine: Engine, tenant: TenantKey, status: ChannelStatus = ChannelStatus.ACTIVE
          ) -> Watched:  # fmt: skip
    with session_scope(engine) as db:
        connection = Connection(tenant_id=tenant.tenant_id, provider=Provider.GOOGLE,
                                schedule_id="sched-1", sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id=uuid.uuid4().hex,
                                    import_enabled=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        made = Watched(calendar.id, uuid.uuid4().hex, secrets.token_urlsafe(16))
        db.add(PushChannel(calendar_id=calendar.id, provider=Provider.GOOGLE,
                           channel_id=made.channel_id, resource_id="res", secret=made.token,
                           status=status, expires_at=utcnow() + timedelta(days=7)))  # fmt: skip
        return made


def arrival(channel: Watched, number: int) -> Entry:
    key = f"{channel.channel_id}:{number}"
    return Entry(Arrival("google", key, channel.channel_id, {"message": number}),
                 ChannelEvent.CHANGED)  # fmt: skip


def headers(channel: Watched, number: int) -> dict[str, str]:
    return {"X-Goog-Channel-ID": channel.channel_id, "X-Goog-Channel-Token": channel.token,
            "X-Goog-Resource-ID": "res", "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": str(number)}  # fmt: skip


@contextmanager
def inserts(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOX"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@contextmanager
def committing(engine: Engine) -> Iterator[sqlalchemy.Connection]:
    """A connection like the intake's own: each statement commits itself."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        yield db


def inbox_keys(engine: Engine) -> list[str]:
    with session_scope(engine) as db:
        return list(db.scalars(select(InboxItem.idempotency_key).order_by(InboxItem.id)))


def test_the_notices_of_several_requests_are_recorded_by_one_statement(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    first, second = watch(engine, tenant), watch(engine, tenant)
    stopped = watch(engine, tenant, ChannelStatus.STOPPED)
    state = client.app.state  # type: ignore[attr-defined]
    gathered = [[arrival(first, 1), arrival(second, 1)], [arrival(stopped, 1)],
                [arrival(first, 1)], [arrival(first, 2)]]  # fmt: skip
    with inserts(state.engine) as statements, committing(state.engine) as db:
        fates = take(state, db, gathered)
    assert fates == [[Fate.RECORDED, Fate.RECORDED], [Fate.STALE], [Fate.DUPLICATE],
                     [Fate.RECORDED]]  # fmt: skip
    assert len(statements) == 1
    assert inbox_keys(engine) == [f"{first.channel_id}:1", f"{second.channel_id}:1",
                                  f"{first.channel_id}:2"]  # fmt: skip
    assert sorted(args[0] for _, args in queued("sync")) == sorted(
        [first.calendar_id, second.calendar_id]
    )
    with committing(state.engine) as db:
        assert take(state, db, [[arrival(first, 2)]]) == [[Fate.DUPLICATE]]  # a resend, later


def test_every_acknowledged_notice_of_concurrent_requests_is_recorded(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    channels = [watch(engine, tenant) for _ in range(3)]
    sends = [(channels[n % 3], n + 1) for n in range(60)] + [(channels[0], 1)]  # one resent

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://calsync.test") as http:
            return await asyncio.gather(*(http.post(HOOK, headers=headers(c, n))
                                          for c, n in sends))  # fmt: skip

    answers = asyncio.run(post_all())
    assert [a.status_code for a in answers] == [200] * len(sends)
    assert sum(a.json() == {"duplicate": True} for a in answers) == 1
    assert sorted(inbox_keys(engine)) == sorted({f"{c.channel_id}:{n}" for c, n in sends})
    synced = [args[0] for name, args in queued("sync") if name == SYNC]
    assert sorted(synced) == sorted(c.calendar_id for c in channels)  # one run per calendar


def test_a_failed_recording_answers_an_error_and_the_next_request_is_recorded(
    client: TestClient, engine: Engine, tenant: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = watch(engine, tenant)
    real = intake_module.record_live
    failures = iter([OperationalError("INSERT", {}, Exception("database went away"))])

    def failing_once(db: Any, arrivals: Any) -> Any:
        for failure in failures:
            raise failure
        return real(db, arrivals)

    monkeypatch.setattr(intake_module, "record_live", failing_once)
    answering = TestClient(client.app, raise_server_exceptions=False)
    assert answering.post(HOOK, headers=headers(channel, 1)).status_code == 500
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(InboxItem)) == 0
    answer = client.post(HOOK, headers=headers(channel, 1))  # Google sends it again
    assert answer.status_code == 200 and answer.json() == {"duplicate": False}
    assert inbox_keys(engine) == [f"{channel.channel_id}:1"]


def test_the_app_shutting_down_ends_its_recording_threads(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    channel = watch(engine, tenant)
    with TestClient(client.app) as running:  # its lifespan ends with the block
        assert running.post(HOOK, headers=headers(channel, 1)).status_code == 200
        threads = list(client.app.state.intake.threads)  # type: ignore[attr-defined]
        assert threads and all(t.is_alive() for t in threads)
    assert not any(t.is_alive() for t in threads)
    assert inbox_keys(engine) == [f"{channel.channel_id}:1"]


def test_a_channel_opening_is_answered_before_its_row_exists_and_a_change_is_not(
    client: TestClient, engine: Engine, tenant: TenantKey, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = Watched("-", uuid.uuid4().hex, "token")  # watched at Google, not committed yet
    opening = {**headers(unknown, 1), "X-Goog-Resource-State": "sync"}
    with caplog.at_level("WARNING", logger="api.webhooks.systems"):
        assert client.post(HOOK, headers=opening).status_code == 200
        assert not caplog.records  # the provider's opening message is no one's mistake
        client.post(HOOK, headers=headers(unknown, 2))
        assert "failed their channel's check" in caplog.text  # a change on it is
    assert inbox_keys(engine) == []
