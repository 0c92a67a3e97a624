"""A dedicated calendar made by MKCALENDAR (Wix's `syncToCalendar: DEDICATED_CALENDAR`), against
real Radicale and Xandikos: it lists as a writable event calendar, takes our events, and a
second attempt (a retried task) reuses it instead of making another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from caldav.collection import Calendar
from conftest import WINDOW, CallCounter, account_for, person_client
from harness.caldav_servers import event_ics

from providers.caldav.account import candidate_hrefs
from sandbox.caldav_servers import CalDAVServer
from sync.event import CanonicalEvent, same_content

T = datetime(2027, 5, 3, 10, tzinfo=UTC)
NAME = "Wix Bookings"


def person_calendar(server: CalDAVServer, url: str) -> Calendar:
    return Calendar(client=person_client(server), url=url)


def summaries(server: CalDAVServer, url: str) -> list[str]:
    """What the person's app shows in the calendar at `url`."""
    events = person_calendar(server, url).get_events()
    assert isinstance(events, list)
    return sorted(str(e.icalendar_component.get("SUMMARY")) for e in events)


def test_a_new_calendar_lists_as_writable_and_takes_events(caldav_server: CalDAVServer) -> None:
    key = f"new-{caldav_server.kind}"
    account = account_for(caldav_server)
    before = {c.remote_id for c in account.list_calendars()}

    info = account.create_calendar(NAME, key=key)

    assert info.remote_id == candidate_hrefs(caldav_server.home_url, NAME, key)[0]
    assert info.remote_id not in before
    assert (info.name, info.read_only) == (NAME, False)
    listed = {c.remote_id: c for c in account_for(caldav_server).list_calendars()}
    assert listed[info.remote_id] == info
    assert person_calendar(caldav_server, info.remote_id).get_supported_components() == ["VEVENT"]

    session = CanonicalEvent("Session: yoga", T, T + timedelta(hours=1), location="Studio 2")
    created = account.calendar(info, WINDOW).create(
        session, "dedicated:0", marker="calsync:conn:dedicated"
    )
    [listed_event] = account.calendar(info, WINDOW).list_changes(None).changes
    assert listed_event.id == created.id and listed_event.marker == "calsync:conn:dedicated"
    assert listed_event.event is not None and same_content(listed_event.event, session)
    assert summaries(caldav_server, info.remote_id) == ["Session: yoga"]


def test_a_second_attempt_reuses_the_calendar_it_made(caldav_server: CalDAVServer) -> None:
    key = f"again-{caldav_server.kind}"
    first = account_for(caldav_server).create_calendar(NAME, key=key)
    person_calendar(caldav_server, first.remote_id).add_event(
        event_ics("kept", T, T + timedelta(hours=1), "Written before the retry")
    )
    counter = CallCounter()
    account = account_for(caldav_server, counter)
    account.verify()
    discovery = counter.calls

    again = account.create_calendar(NAME, key=key)

    assert again == first
    assert counter.calls - discovery == 2  # the refused MKCALENDAR, one PROPFIND
    listed = [c.remote_id for c in account_for(caldav_server).list_calendars()]
    assert listed.count(first.remote_id) == 1
    assert not any(r.startswith(first.remote_id.rstrip("/") + "-") for r in listed)
    assert summaries(caldav_server, first.remote_id) == ["Written before the retry"]


def test_an_href_holding_something_else_is_passed_over(caldav_server: CalDAVServer) -> None:
    key = f"taken-{caldav_server.kind}"
    first, second = candidate_hrefs(caldav_server.home_url, NAME, key)[:2]
    # Someone's task list sits where the calendar would go: it must not receive sessions.
    made = person_client(caldav_server).principal().make_calendar(
        name="Chores", cal_id=first.rstrip("/").rsplit("/", 1)[-1],
        supported_calendar_component_set=["VTODO"],
    )  # fmt: skip
    assert str(made.url) == first

    info = account_for(caldav_server).create_calendar(NAME, key=key)

    assert info.remote_id == second and not info.read_only
    assert person_calendar(caldav_server, first).get_display_name() == "Chores"
    assert person_calendar(caldav_server, first).get_supported_components() == ["VTODO"]


def test_names_are_escaped_and_keys_make_distinct_calendars(caldav_server: CalDAVServer) -> None:
    name = "Yoga & Pilates <Studio> \u00e9t\u00e9"
    account = account_for(caldav_server)
    one = account.create_calendar(name, key=f"one-{caldav_server.kind}")
    two = account.create_calendar(name, key=f"two-{caldav_server.kind}")

    assert one.remote_id != two.remote_id
    listed = {c.remote_id: c.name for c in account.list_calendars()}
    assert listed[one.remote_id] == listed[two.remote_id] == name
    assert "/calsync-yoga-pilates-studio-t-" in one.remote_id
