"""Every calendar of an account, as each system lists it: Google's calendarList (hidden entries
included, deleted ones not, every page), Graph's /me/calendars (every page) and CalDAV principal
discovery on a real Radicale (only collections that hold events)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from conftest import person_client
from harness.google import USER, GoogleWorld
from harness.microsoft import signed_in

from providers.base import CalendarInfo
from providers.caldav.account import CalDAVAccount
from sandbox.caldav_servers import CalDAVServer, start_radicale
from sandbox.graph.harness import GraphHarness, graph_harness

OTHER = "bob@example.com"


def by_name(listed: list[CalendarInfo]) -> dict[str, tuple[bool, bool]]:
    """Name -> (read_only, primary)."""
    return {c.name: (c.read_only, c.primary) for c in listed}


@pytest.fixture
def google(world: GoogleWorld) -> GoogleWorld:
    world.reset()
    return world


def test_google_lists_every_calendar_of_the_list_hidden_ones_too(google: GoogleWorld) -> None:
    state = google.state
    team = state.add_calendar(USER, summary="Team")
    state.add_account(OTHER)
    holidays = state.add_calendar(OTHER, summary="Holidays")
    state.share_calendar(holidays, USER, "reader")
    old = state.add_calendar(USER, summary="Old projects")
    state.hide_calendar(USER, old)
    account = google.account()

    assert by_name(account.list_calendars()) == {
        USER: (False, True), "Team": (False, False), "Holidays": (True, False),
        "Old projects": (False, False),
    }  # fmt: skip

    state.delete_calendar(team)  # gone: not even as a deleted entry
    state.unsubscribe_calendar(USER, holidays)
    state.rename_calendar(old, "Archive")
    assert by_name(account.list_calendars()) == {USER: (False, True), "Archive": (False, False)}


def test_google_reads_every_page_of_a_long_calendar_list(google: GoogleWorld) -> None:
    for n in range(260):  # more than one page of the largest size (250)
        google.state.add_calendar(USER, summary=f"Room {n:03}")
    listed = google.account().list_calendars()
    assert len(listed) == 261 and len({c.remote_id for c in listed}) == 261


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


def test_graph_lists_every_calendar_on_every_page(graph: GraphHarness) -> None:
    graph.state.add_calendar(graph.user.id, "Team")
    graph.state.add_calendar(graph.user.id, "Shared with me", can_edit=False)
    account = signed_in(graph)
    try:
        assert by_name(account.list_calendars()) == {
            "Calendar": (False, True), "Team": (False, False), "Shared with me": (True, False),
        }  # fmt: skip
        for n in range(120):  # past the client's page of 100
            graph.state.add_calendar(graph.user.id, f"Room {n:03}")
        assert len(account.list_calendars()) == 123
    finally:
        account.close()


@pytest.fixture(scope="module")
def radicale_of_one() -> Iterator[CalDAVServer]:
    """A Radicale of its own: the shared one's user holds every other test's calendars."""
    server = start_radicale({"carol": "carol-secret"}, user="carol")
    yield server
    server.stop()


def test_caldav_discovers_every_calendar_that_holds_events(radicale_of_one: CalDAVServer) -> None:
    principal = person_client(radicale_of_one).principal()
    suffix = uuid.uuid4().hex[:6]
    for name, components in ((f"Home {suffix}", None), (f"Work {suffix}", ["VEVENT"]),
                             (f"Trips {suffix}", ["VEVENT", "VTODO"]),
                             (f"Chores {suffix}", ["VTODO"])):  # fmt: skip
        principal.make_calendar(name=name, cal_id=name.replace(" ", "-").lower(),
                                supported_calendar_component_set=components)  # fmt: skip
    server = radicale_of_one
    account = CalDAVAccount(server.base_url, server.username, server.password,
                            allow_private=True)  # fmt: skip
    try:
        names = {c.name for c in account.list_calendars()}
    finally:
        account.close()
    assert {f"Home {suffix}", f"Work {suffix}", f"Trips {suffix}"} <= names
    assert f"Chores {suffix}" not in names
