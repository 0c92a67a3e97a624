"""A dedicated calendar end to end: a CalDAV account connected by credentials through the API
(a real Radicale on loopback), `syncToCalendar: dedicatedCalendar` set by Update Sync Config,
and a real worker that makes the calendar (MKCALENDAR) and exports the schedule's sessions
into it. The Wix side is the local store's `wix-s1` calendar."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, select

from api.app import create_app
from api.auth import create_tenant
from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar
from models.db import session_scope
from models.types import utcnow
from sandbox.caldav_servers import CalDAVServer, start_radicale
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState
from tasks.context import WorkerContext, build_context
from tasks.maintenance import dispatch_due

V2 = "/bookings/v2/external-calendars"
CALDAV_ID = "5b1c7a0e-2c6d-5e8f-9a31-4cda1dcaf001"
DEDICATED = "Wix Bookings"


@pytest.fixture(scope="module")
def radicale() -> Iterator[CalDAVServer]:
    server = start_radicale()
    yield server
    server.stop()


@pytest.fixture
def dav_settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings.model_copy(update={"caldav_allow_private": True})


@pytest.fixture
def dav_api(dav_settings: Settings, context: WorkerContext) -> Iterator[ServedApp]:
    app = create_app(dav_settings)
    app.state.gate = context.gate
    with serve_in_thread(app) as served:
        yield served


def calendars_named(person: DAVClient, name: str) -> list[Calendar]:
    calendars = person.principal().get_calendars()
    assert isinstance(calendars, list)
    return [c for c in calendars if c.get_display_name() == name]


def titles(calendar: Calendar) -> list[str]:
    events = calendar.get_events()
    assert isinstance(events, list)
    return sorted(str(e.icalendar_component.get("SUMMARY")) for e in events)


def synced(engine: Engine, connection_id: str) -> bool:
    """The connection's dedicated calendar exists and a run of it went through."""
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        dedicated = (connection.sync_config or {}).get("dedicatedCalendarId")
        row = None if dedicated is None else db.get(ExternalCalendar, dedicated)
        done = row is not None and row.last_synced_at is not None
        return done and connection.status is ConnectionStatus.SYNCED


def add_session(store: ServedApp, title: str, start: datetime) -> None:
    httpx.post(f"{store.base_url}/_store/calendars/wix-s1/events", json={"event": {
        "title": title, "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat()}}).raise_for_status()  # fmt: skip


def test_sessions_arrive_in_a_dedicated_calendar_the_worker_made(
    radicale: CalDAVServer, dav_settings: Settings, engine: Engine, dav_api: ServedApp,
    store: tuple[StoreState, ServedApp], worker: Launch,
) -> None:  # fmt: skip
    person = DAVClient(url=radicale.base_url, username=radicale.username,
                       password=radicale.password)  # fmt: skip
    work = person.principal().make_calendar(name="Work", cal_id=f"work-{uuid.uuid4().hex[:6]}")
    store[0].add_calendar("wix-s1")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    add_session(store[1], "Yoga", start)
    add_session(store[1], "Pilates", start + timedelta(days=1))
    with session_scope(engine) as db:
        _, key = create_tenant(db, f"instance-{uuid.uuid4().hex[:8]}", "Studio")
    api = httpx.Client(base_url=dav_api.base_url, headers={"Authorization": f"Bearer {key}"})
    worker(dav_settings)

    connected = api.post(f"{V2}/connections:connectByCredentials", json={
        "scheduleId": "s1", "providerId": CALDAV_ID, "serverUrl": radicale.base_url,
        "email": radicale.username, "password": radicale.password})  # fmt: skip
    assert connected.status_code == 200, connected.text
    connection_id = connected.json()["connection"]["id"]
    patched = api.patch(f"{V2}/connections/{connection_id}/sync-config", json={"syncConfig": {
        "listEventFromCalendars": {"enabled": False},
        "syncToCalendar": {"enabled": True, "dedicatedCalendar": {}}}})  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["connection"]["syncConfig"]["syncToCalendar"] == {
        "enabled": True, "dedicatedCalendar": {}}  # fmt: skip

    def made() -> list[Calendar]:
        return calendars_named(person, DEDICATED)

    wait_until(lambda: len(made()) == 1, 30, "the dedicated calendar on the server")
    [dedicated] = made()
    wait_until(lambda: titles(dedicated) == ["Pilates", "Yoga"], 30,
               "the sessions in the dedicated calendar")  # fmt: skip
    assert titles(work) == []  # the person's own calendar receives nothing
    assert dedicated.get_supported_components() == ["VEVENT"]

    wait_until(lambda: synced(engine, connection_id), 30, "the dedicated calendar's run to end")
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None and connection.error_reason is None
        row = db.scalar(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.id == connection.sync_config["dedicatedCalendarId"]))  # fmt: skip
        assert row is not None and row.export_target and not row.import_enabled
        assert row.remote_id == str(dedicated.url) and row.name == DEDICATED
        connection.next_poll_at = utcnow()
    listed = api.get(f"{V2}/connections/{connection_id}/calendars").json()["calendars"]
    assert sorted(c["name"] for c in listed) == [DEDICATED, "Work"]

    # A later session follows at the next poll, into the same calendar.
    add_session(store[1], "Massage", start + timedelta(days=2))
    context = build_context(dav_settings)
    try:
        assert dispatch_due(context)["polled"] == 1
    finally:
        context.http.close()
    wait_until(lambda: titles(dedicated) == ["Massage", "Pilates", "Yoga"], 30,
               "the later session in the dedicated calendar")  # fmt: skip
    assert len(made()) == 1
    api.close()
