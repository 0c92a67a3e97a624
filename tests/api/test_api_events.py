"""List Events (v2): served from the links' external side, filtered, paged by cursor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import TenantKey, seed_connection
from fastapi.testclient import TestClient
from harness.clock import days_ahead
from sqlalchemy import Engine, select

from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar, Link, Side
from models.db import session_scope

V2 = "/bookings/v2/external-calendars"
FIRST = days_ahead(1, 0).date()  # the listed range starts tomorrow


def on(day: int, clock: str = "") -> str:
    """Day `day` of the range (0 is its first) as ISO text, with a time of day if given."""
    text = (FIRST + timedelta(days=day)).isoformat()
    return f"{text}T{clock}" if clock else text


RANGE = {"from": on(0, "00:00:00Z"), "to": on(7, "00:00:00Z")}


def seen(title: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "description": "", "location": "", "start": start, "end": end,
            "allDay": len(start) == 10, "timeZone": None, "status": "confirmed",
            "transparency": "busy", **extra}  # fmt: skip


def add_links(engine: Engine, connection_id: str, calendar: str,
              events: list[tuple[Side, dict[str, Any]]]) -> None:  # fmt: skip
    with session_scope(engine) as db:
        row = db.scalar(
            select(ExternalCalendar).where(
                ExternalCalendar.connection_id == connection_id, ExternalCalendar.name == calendar
            )
        )
        assert row is not None
        for number, (origin, snapshot) in enumerate(events):
            db.add(Link(connection_id=connection_id, calendar_id=row.id, origin=origin,
                        base=snapshot, external_seen=snapshot,
                        external_event_id=f"{calendar}-{number}"))  # fmt: skip


@pytest.fixture
def events(engine: Engine, api_settings: Settings, tenant: TenantKey, other: TenantKey) -> str:
    mine = seed_connection(engine, api_settings, tenant, "sched-1")
    add_links(engine, mine, "Home", [
        (Side.EXTERNAL, seen("Dentist", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00"))),
        (Side.EXTERNAL, seen("Early", on(-1, "23:00:00+00:00"), on(0, "01:00:00+00:00"))),
        (Side.EXTERNAL, seen("Trip", on(3), on(5))),
        (Side.EXTERNAL, seen("Gym", on(2, "07:00:00+01:00"), on(2, "08:00:00+01:00"))),
        (Side.EXTERNAL, seen("Called off", on(2, "12:00:00+00:00"),
                             on(2, "13:00:00+00:00"), status="cancelled")),
        (Side.EXTERNAL, seen("Later", on(8, "09:00:00+00:00"), on(8, "10:00:00+00:00"))),
        (Side.WIX, seen("Our session", on(1, "12:00:00+00:00"), on(1, "13:00:00+00:00"))),
    ])  # fmt: skip
    add_links(
        engine,
        mine,
        "Work",
        [  # a calendar that does not import: not listed
            (
                Side.EXTERNAL,
                seen("Hidden", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00")),
            )
        ],
    )
    second = seed_connection(engine, api_settings, tenant, "sched-2")
    add_links(
        engine,
        second,
        "Home",
        [(Side.EXTERNAL, seen("Yoga", on(4, "18:00:00+00:00"), on(4, "19:00:00+00:00")))],
    )
    gone = seed_connection(engine, api_settings, tenant, "sched-3")
    add_links(
        engine,
        gone,
        "Home",
        [(Side.EXTERNAL, seen("Old", on(4, "18:00:00+00:00"), on(4, "19:00:00+00:00")))],
    )
    with session_scope(engine) as db:
        row = db.get(Connection, gone)
        assert row is not None
        row.status = ConnectionStatus.DISCONNECTED
    theirs = seed_connection(engine, api_settings, other, "sched-9")
    add_links(
        engine,
        theirs,
        "Home",
        [(Side.EXTERNAL, seen("Secret", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00")))],
    )
    return mine


def listing(client: TestClient, tenant: TenantKey, **params: Any) -> dict[str, Any]:
    response = client.get(f"{V2}/events", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_events_overlapping_the_range_sorted_by_start_without_pi(
    client: TestClient, tenant: TenantKey, events: str
) -> None:
    body = listing(client, tenant, **RANGE)
    assert [(e["start"], e["end"]) for e in body["events"]] == [
        (on(-1, "23:00:00.000Z"), on(0, "01:00:00.000Z")),
        (on(1, "09:00:00.000Z"), on(1, "10:00:00.000Z")),
        (on(2, "06:00:00.000Z"), on(2, "07:00:00.000Z")),
        (on(3, "00:00:00.000Z"), on(5, "00:00:00.000Z")),
        (on(4, "18:00:00.000Z"), on(4, "19:00:00.000Z")),
    ]
    first = body["events"][0]
    assert first == {"scheduleId": "sched-1", "calendarType": "OTHER",
                     "start": on(-1, "23:00:00.000Z"), "end": on(0, "01:00:00.000Z"),
                     "allDay": False, "tag": "caldav"}  # fmt: skip
    assert body["pagingMetadata"] == {"count": 5, "cursors": {}, "hasNext": False}
    with_pi = listing(client, tenant, fieldsets="OWN_PI", **RANGE)
    assert [e["title"] for e in with_pi["events"]] == ["Early", "Dentist", "Gym", "Trip", "Yoga"]
    assert {e["calendarName"] for e in with_pi["events"]} == {"Home"}


def test_filters_and_cursor_paging(client: TestClient, tenant: TenantKey, events: str) -> None:
    assert [e["allDay"] for e in listing(client, tenant, allDay=True, **RANGE)["events"]] == [True]
    assert len(listing(client, tenant, allDay=False, **RANGE)["events"]) == 4
    only = listing(client, tenant, scheduleIds="sched-2", fieldsets="OWN_PI", **RANGE)
    assert [e["title"] for e in only["events"]] == ["Yoga"]
    assert listing(client, tenant, userIds="nobody", **RANGE)["events"] == []
    seen_titles = []
    page = listing(client, tenant, fieldsets="OWN_PI", **{"cursorPaging.limit": 2}, **RANGE)
    while True:
        seen_titles += [e["title"] for e in page["events"]]
        assert page["pagingMetadata"]["count"] == len(page["events"])
        if not page["pagingMetadata"]["hasNext"]:
            break
        cursor = page["pagingMetadata"]["cursors"]["next"]
        page = listing(client, tenant, fieldsets="OWN_PI",
                       **{"cursorPaging.limit": 2, "cursorPaging.cursor": cursor})  # fmt: skip
    assert seen_titles == ["Early", "Dentist", "Gym", "Trip", "Yoga"]


@pytest.mark.parametrize(("params", "field"), [
    ({"to": RANGE["to"]}, "from"),
    ({"from": RANGE["from"]}, "to"),
    ({"from": "yesterday", "to": RANGE["to"]}, "from"),
    ({"from": on(0, "00:00:00"), "to": RANGE["to"]}, "from"),
    ({"from": RANGE["to"], "to": RANGE["from"]}, "to"),
    ({"cursorPaging.cursor": "not-a-cursor"}, "cursorPaging.cursor"),
    ({"cursorPaging.cursor": "eyJmIjogMX0"}, "cursorPaging.cursor"),
    ({"fieldsets": "ALL", **RANGE}, "fieldsets[0]"),
    ({"cursorPaging.limit": 1001, **RANGE}, "cursorPaging.limit"),
])  # fmt: skip
def test_bad_queries_name_the_parameter(
    client: TestClient, tenant: TenantKey, params: dict[str, Any], field: str
) -> None:
    response = client.get(f"{V2}/events", headers=tenant.headers, params=params)
    assert response.status_code == 400
    assert response.json()["details"]["field"] == field
