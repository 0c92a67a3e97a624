"""CalDAV end to end: a real Radicale, polled by beat's dispatcher, synced by a real worker; the
Wix side is the local store's `wix-s1` calendar."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from caldav import DAVClient
from harness.caldav_servers import event_ics
from harness.processes import Launch, wait_until
from sqlalchemy import Engine

from config import Settings
from models import Connection, ExternalCalendar, Provider, Tenant
from models.db import session_scope
from models.types import utcnow
from sandbox.caldav_servers import CalDAVServer, start_radicale
from sandbox.server import ServedApp
from sandbox.store import StoreState
from tasks.context import WorkerContext, build_context
from tasks.maintenance import dispatch_due


@pytest.fixture(scope="module")
def radicale() -> Iterator[CalDAVServer]:
    server = start_radicale()
    yield server
    server.stop()


def test_a_polled_caldav_calendar_reaches_wix_and_a_session_reaches_it(
    radicale: CalDAVServer, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp], worker: Launch, context: WorkerContext,
) -> None:  # fmt: skip
    settings = pipeline_settings.model_copy(update={"caldav_allow_private": True})
    context = build_context(settings)  # the fixture's made the Celery app; this one polls
    store[0].add_calendar("wix-s1")
    person = DAVClient(url=radicale.base_url, username=radicale.username,
                       password=radicale.password)  # fmt: skip
    cal_id = f"cal-{uuid.uuid4().hex[:8]}"
    calendar = person.principal().make_calendar(name="Work", cal_id=cal_id)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    calendar.save_event(event_ics("dentist-1", start, start + timedelta(hours=1), "Dentist"))
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id=f"instance-{uuid.uuid4().hex[:6]}")
        db.add(tenant)
        db.flush()
        connection = Connection(
            tenant_id=tenant.id, provider=Provider.CALDAV, schedule_id="s1",
            server_url=radicale.base_url, next_poll_at=utcnow(),
            credentials={"username": radicale.username, "password": radicale.password},
        )  # fmt: skip
        db.add(connection)
        db.flush()
        db.add(ExternalCalendar(connection_id=connection.id, remote_id=str(calendar.url.path),
                                import_enabled=True, export_target=True))  # fmt: skip
    worker(settings)
    assert dispatch_due(context)["polled"] == 1

    def titles() -> list[str]:
        events = store[0].calendar("wix-s1").events().values()
        return sorted(e.event.title for e in events if e.event)

    wait_until(lambda: titles() == ["Dentist"], 30, "the CalDAV event as a Wix block")

    # A session made on the Wix side is exported at the next poll.
    httpx.post(f"{store[1].base_url}/_store/calendars/wix-s1/events", json={"event": {
        "title": "Massage", "start": (start + timedelta(hours=3)).isoformat(),
        "end": (start + timedelta(hours=4)).isoformat()}}).raise_for_status()  # fmt: skip
    with session_scope(engine) as db:
        row = db.get(Connection, connection.id)
        assert row is not None
        row.next_poll_at = utcnow()
    assert dispatch_due(context)["polled"] == 1
    wait_until(lambda: any("Massage" in str(e.data) for e in calendar.events()), 30,
               "the session in the CalDAV calendar")  # fmt: skip
    context.http.close()
