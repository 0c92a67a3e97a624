"""A malformed CalDAV event, end to end: its Wix block stays through incremental and full runs,
the rest of the calendar syncs, the calendar lists it as unreadable, and a repair clears it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from harness.caldav_servers import event_ics
from harness.pipeline import connect_calendar
from sqlalchemy import Engine

from config import Settings
from models import ExternalCalendar, Provider
from models.db import session_scope
from sandbox.caldav_servers import CalDAVServer, start_xandikos
from sandbox.server import ServedApp
from sandbox.store import StoreState
from tasks.context import WorkerContext, build_context
from tasks.runner import run_calendar

START = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def xandikos() -> Iterator[CalDAVServer]:
    server = start_xandikos()
    yield server
    server.stop()


def put(url: str, uid: str, text: str) -> None:
    httpx.put(f"{url}{uid}.ics", content=text,
              headers={"Content-Type": "text/calendar"}).raise_for_status()  # fmt: skip


def make_calendar(server: CalDAVServer) -> str:
    url = f"{server.home_url.rstrip('/')}/cal-{uuid.uuid4().hex[:8]}/"
    answer = httpx.request("MKCALENDAR", url)
    assert answer.status_code == 201, answer.text
    return url


def test_a_malformed_event_keeps_its_block_and_the_rest_syncs(
    xandikos: CalDAVServer, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> None:  # fmt: skip
    context: WorkerContext = build_context(
        pipeline_settings.model_copy(update={"caldav_allow_private": True})
    )
    wix = store[0].add_calendar("wix-s1")
    url = make_calendar(xandikos)
    dentist = event_ics("dentist", START, START + HOUR, "Dentist")
    put(url, "dentist", dentist)
    put(url, "standup", event_ics("standup", START + 2 * HOUR, START + 3 * HOUR, "Standup",
                                  rrule="FREQ=DAILY;COUNT=3"))  # fmt: skip
    calendar_id = connect_calendar(engine, Provider.CALDAV, httpx.URL(url).path, is_primary=False,
                                   server_url=xandikos.base_url, credentials={})

    def blocks() -> list[str]:
        return sorted(e.event.title for e in wix.events().values() if e.event)

    run_calendar(context, calendar_id, "poll")
    assert blocks() == ["Dentist", "Standup", "Standup", "Standup"]

    put(url, "dentist", dentist.replace("DTSTART", "X-BROKEN-DTSTART"))
    put(
        url,
        "standup",
        event_ics(
            "standup", START + 2 * HOUR, START + 3 * HOUR, "Standup", rrule="FREQ=DAILY;COUNT=3"
        ).replace("COUNT=3", "UNTIL=soon"),
    )
    put(url, "lunch", event_ics("lunch", START + 5 * HOUR, START + 6 * HOUR, "Lunch"))
    for full in (False, True):
        outcome = run_calendar(context, calendar_id, "poll", full=full)
        assert outcome.failed == 0 and outcome.stopped_by is None
        assert blocks() == ["Dentist", "Lunch", "Standup", "Standup", "Standup"]
        noted = unreadable(engine, calendar_id)
        assert "external:dentist.ics" in noted and "DTSTART" in noted["external:dentist.ics"]
        assert sum(key.startswith("external:standup.ics") for key in noted) >= 1

    put(url, "dentist", dentist.replace("Dentist", "Dentist (moved)"))
    run_calendar(context, calendar_id, "poll")
    assert "Dentist (moved)" in blocks()
    assert "external:dentist.ics" not in unreadable(engine, calendar_id)



def unreadable(engine: Engine, calendar_id: str) -> dict[str, str]:
    with session_scope(engine) as db:
        calendar = db.get(ExternalCalendar, calendar_id)
        assert calendar is not None
        return {key: item["reason"] for key, item in (calendar.unreadable or {}).items()}
