"""Real CalDAV servers for the provider tests: Radicale and Xandikos, started once per session.

`caldav_server` runs a test against both; `radicale` is for what only Radicale can show
(credentials, read-only calendars). `dav` gives a test a fresh calendar collection: the
provider under test on it, and "the person" — a plain `caldav` client, as someone editing the
calendar in their own app would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from caldav.calendarobjectresource import Event
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from harness.google import GoogleWorld

from providers.base import CalendarInfo, SyncWindow
from providers.caldav.account import CalDAVAccount
from providers.caldav.calendar import CalDAVCalendar
from sandbox.caldav_servers import CalDAVServer, start

WINDOW = SyncWindow(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
SERVER_KINDS = ("radicale", "xandikos")


class ServerPool:
    """Each kind of server started on first use, all stopped at the end of the session."""

    def __init__(self) -> None:
        self.servers: dict[str, CalDAVServer] = {}

    def get(self, kind: str) -> CalDAVServer:
        if kind not in self.servers:
            self.servers[kind] = start(kind)
        return self.servers[kind]

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def world() -> Iterator[GoogleWorld]:
    """The Google sandbox, one per test module (each module resets it between its tests)."""
    started = GoogleWorld.start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def caldav_pool() -> Iterator[ServerPool]:
    pool = ServerPool()
    yield pool
    pool.stop()


@pytest.fixture(params=SERVER_KINDS)
def caldav_server(request: pytest.FixtureRequest, caldav_pool: ServerPool) -> CalDAVServer:
    return caldav_pool.get(str(request.param))


@pytest.fixture
def radicale(caldav_pool: ServerPool) -> CalDAVServer:
    return caldav_pool.get("radicale")


@dataclass
class CallCounter:
    calls: int = 0

    def __call__(self) -> None:
        self.calls += 1


@dataclass
class Setup:
    server: CalDAVServer
    account: CalDAVAccount
    provider: CalDAVCalendar
    person: Calendar  # the same calendar through a plain caldav client
    url: str
    counter: CallCounter = field(default_factory=CallCounter)

    def calendar(
        self, window: SyncWindow = WINDOW, *, sync_collection: bool | None = None
    ) -> CalDAVCalendar:
        """Another provider object on the same calendar (a later sync run)."""
        return self.account.calendar(CalendarInfo(self.url), window,
                                     sync_collection=sync_collection)

    def add(self, ics: str) -> Event:
        """The person adds an event in their calendar app."""
        event = self.person.add_event(ics)
        assert isinstance(event, Event)
        return event

    def person_event(self, uid: str) -> Event:
        event = self.person.get_event_by_uid(uid)
        assert isinstance(event, Event)
        return event

    def person_events(self) -> list[Event]:
        events = self.person.get_events()
        assert isinstance(events, list)
        return events


def person_client(server: CalDAVServer, user: str | None = None) -> DAVClient:
    username, password = server.credentials(user or server.username)
    return DAVClient(url=server.base_url, username=username, password=password)


def new_calendar(server: CalDAVServer, components: list[str] | None = None) -> Calendar:
    principal = person_client(server).principal()
    cal_id = f"cal-{uuid.uuid4().hex[:10]}"
    calendar = principal.make_calendar(
        name=f"Test {cal_id}", cal_id=cal_id, supported_calendar_component_set=components
    )
    assert isinstance(calendar, Calendar)
    return calendar


def account_for(server: CalDAVServer, counter: CallCounter | None = None) -> CalDAVAccount:
    return CalDAVAccount(
        server.base_url, server.username, server.password,
        before_request=counter, allow_private=True,
    )  # fmt: skip


@pytest.fixture
def dav(caldav_server: CalDAVServer) -> Iterator[Setup]:
    person = new_calendar(caldav_server)
    counter = CallCounter()
    account = account_for(caldav_server, counter)
    url = str(person.url)
    yield Setup(caldav_server, account, account.calendar(CalendarInfo(url), WINDOW), person, url,
                counter)
    account.close()
