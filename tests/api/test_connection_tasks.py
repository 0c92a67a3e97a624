"""The lifecycle tasks run in-process against the local store: what a refusing side leaves,
and how the clean-up waits for a running sync."""

from __future__ import annotations

import httpx
import pytest
from conftest import TenantKey, seed_connection
from fastapi.testclient import TestClient
from harness.pipeline import Pair
from sqlalchemy import Engine, func, select

from config import Settings
from models import (
    ChannelStatus,
    Connection,
    ConnectionStatus,
    ErrorReason,
    ExternalCalendar,
    Link,
    Provider,
    PushChannel,
)
from models.db import session_scope
from providers.base import CalendarInfo
from sandbox.server import ServedApp
from sandbox.store import StoreState
from tasks.context import WorkerContext
from tasks.coordination import CalendarBusy
from tasks.disconnect import clean_up
from tasks.reconfigure import apply_config_change
from tasks.runner import run_calendar

V2 = "/bookings/v2/external-calendars"
ALICE = CalendarInfo(remote_id="alice", name="Alice", read_only=False)


@pytest.fixture
def synced(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    store: tuple[StoreState, ServedApp], context: WorkerContext,
) -> tuple[Pair, str]:  # fmt: skip
    """A block imported into Wix and a session exported to alice, by one full run."""
    state, served = store
    state.add_calendar("alice")
    state.add_calendar("wix-s1")
    connection_id = seed_connection(engine, api_settings, tenant, "s1", Provider.LOCAL, (ALICE,),
                                    server_url=served.base_url)  # fmt: skip
    client.patch(
        f"{V2}/connections/{connection_id}/sync-config",
        headers=tenant.headers,
        json={"syncConfig": {"syncToCalendar": {"calendar": {"id": "alice"}}}},
    )
    pair = Pair(state, served.base_url, calendar_of(engine, connection_id), connection_id)
    pair.person_adds("alice", "Dentist", hour=1)
    pair.person_adds("wix-s1", "Yoga class", hour=3)
    run_calendar(context, pair.calendar_id, "test", full=True)
    assert pair.titles("wix-s1") == pair.titles("alice") == ["Dentist", "Yoga class"]
    return pair, connection_id


def calendar_of(engine: Engine, connection_id: str) -> str:
    with session_scope(engine) as db:
        found = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        assert found is not None
        return found


def refuse_deletes(pair: Pair, calendar: str, status: int = 401) -> None:
    fault = {"status": status, "times": 100, "method": "DELETE",
             "pathContains": f"/calendars/{calendar}/"}  # fmt: skip
    httpx.post(f"{pair.store_url}/_store/faults", json=fault).raise_for_status()


def test_disconnect_removes_what_it_can_and_says_what_it_could_not(
    client: TestClient, tenant: TenantKey, engine: Engine, context: WorkerContext,
    synced: tuple[Pair, str],
) -> None:  # fmt: skip
    pair, connection_id = synced
    refuse_deletes(pair, "alice")  # the account's token was revoked meanwhile
    client.post(f"{V2}/connections/{connection_id}/disconnect", headers=tenant.headers)
    result = clean_up(context, connection_id)
    assert result == {"deleted": 1, "refused": ["external"]}
    assert pair.titles("wix-s1") == ["Yoga class"]  # the block went
    assert pair.titles("alice") == ["Dentist", "Yoga class"]  # the copy could not
    cleanup = client.get(f"{V2}/connections/{connection_id}/status",
                         headers=tenant.headers).json()["cleanup"]  # fmt: skip
    assert cleanup["status"] == "FAILED" and cleanup["error"].startswith("external: ")
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(Link)) == 0
    assert clean_up(context, connection_id)["deleted"] == 0  # repeating is harmless


def test_a_withdrawal_the_account_refuses_puts_the_connection_in_error(
    client: TestClient, tenant: TenantKey, engine: Engine, context: WorkerContext,
    synced: tuple[Pair, str],
) -> None:  # fmt: skip
    pair, connection_id = synced
    refuse_deletes(pair, "alice")
    client.patch(f"{V2}/connections/{connection_id}/sync-config", headers=tenant.headers,
                 json={"syncConfig": {"syncToCalendar": {"enabled": False}}})  # fmt: skip
    apply_config_change(context, connection_id, [], [pair.calendar_id], [])
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        assert (connection.status, connection.error_reason) == (
            ConnectionStatus.ERROR, ErrorReason.TOKEN_REVOKED)  # fmt: skip
        kept = db.scalar(select(func.count()).select_from(Link))
    assert kept == 2  # the session's link stays, to be tried again after a reconnect
    assert pair.titles("alice") == ["Dentist", "Yoga class"]


def test_the_clean_up_waits_for_a_running_sync(
    client: TestClient, tenant: TenantKey, context: WorkerContext, synced: tuple[Pair, str]
) -> None:
    pair, connection_id = synced
    client.post(f"{V2}/connections/{connection_id}/disconnect", headers=tenant.headers)
    token = context.gate.acquire(pair.calendar_id)  # a sync run holds the calendar
    assert token is not None
    with pytest.raises(CalendarBusy):
        clean_up(context, connection_id)
    context.gate.abandon(pair.calendar_id, token)
    assert clean_up(context, connection_id)["deleted"] == 2
    assert pair.titles("alice") == ["Dentist"] and pair.titles("wix-s1") == ["Yoga class"]


def test_a_reconnected_connection_is_not_cleaned_up(
    engine: Engine, context: WorkerContext, synced: tuple[Pair, str]
) -> None:
    pair, connection_id = synced  # never disconnected: a stale clean-up task does nothing
    assert clean_up(context, connection_id) == {"skipped": True}
    assert pair.titles("alice") == ["Dentist", "Yoga class"]


def test_a_calendar_that_starts_syncing_gets_its_push_channel(
    client: TestClient, tenant: TenantKey, engine: Engine, context: WorkerContext,
    store: tuple[StoreState, ServedApp],
) -> None:  # fmt: skip
    state, served = store
    for name in ("alice", "alice-work", "wix-s1"):
        state.add_calendar(name)
    work = CalendarInfo(remote_id="alice-work", name="Work", read_only=False)
    connection_id = seed_connection(engine, context.settings, tenant, "s1", Provider.LOCAL,
                                    (ALICE, work), server_url=served.base_url)  # fmt: skip
    both = {"listEventFromCalendars": {"calendars": {"calendars": [
        {"id": "alice"}, {"id": "alice-work"}]}}}  # fmt: skip
    changed = client.patch(f"{V2}/connections/{connection_id}/sync-config",
                           headers=tenant.headers, json={"syncConfig": both})  # fmt: skip
    assert changed.status_code == 200, changed.text
    with session_scope(engine) as db:
        ids = dict(db.execute(select(ExternalCalendar.remote_id, ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id)).all())  # fmt: skip
    result = apply_config_change(context, connection_id, [], [], [ids["alice-work"]])
    assert result["channels"] == 2  # the one that was synced before had none either
    with session_scope(engine) as db:
        watched = {(c.calendar_id, c.status) for c in db.scalars(select(PushChannel))}
    assert watched == {(ids["alice"], ChannelStatus.ACTIVE),
                       (ids["alice-work"], ChannelStatus.ACTIVE)}  # fmt: skip
    assert apply_config_change(context, connection_id, [], [], [])["channels"] == 0
