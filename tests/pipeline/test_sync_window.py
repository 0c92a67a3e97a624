"""Events moved beyond the sync window, end to end on every calendar system (issue 19, item 9).

The window is the horizon calsync keeps in sync. A person's own event moved beyond it loses its
Wix block, the same way on Google, Outlook, CalDAV and the local store, whether the run is
incremental or full: to the planner it is gone from the window (a tombstone, or absent from a
full listing), so the block is deleted. Moved back, it is new to the window and its block
returns. In the other direction, calsync's copy of a Wix session moved beyond the window by the
person is an edit of the copy, never a deletion: the session stays in Wix, and as the policy
lets a copy's new time flow back, it moves there too.

The runs are driven in this process (`run_calendar`), one after another: each run's outcome
is its own positive signal, so nothing waits."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest
import recurring_ical_events
from harness.caldav_servers import event_ics
from harness.clock import days_ahead
from harness.google import USER, GoogleWorld, timed
from harness.microsoft import Outlook
from harness.pipeline import NOWHERE, connect_calendar
from icalendar import Calendar
from sqlalchemy import Engine

from config import Settings
from models import Provider
from providers.local.memory import MemoryCalendar
from providers.microsoft.auth import MicrosoftTokens
from sandbox.caldav_servers import CalDAVServer, start_radicale, start_xandikos
from sandbox.server import ServedApp
from sandbox.store import StoreState
from sync.event import CanonicalEvent, EventStatus, Moment, as_instant
from tasks.context import WorkerContext, build_context
from tasks.runner import run_calendar

HOUR = timedelta(hours=1)
INSIDE = days_ahead(3, 9)
NOW, SOON = days_ahead(0, 0), days_ahead(40, 0)  # what the person looks at in their calendar
SYSTEMS = ["google", "microsoft", "caldav", "local"]


@dataclass
class Person:
    """The calendar's owner in their own calendar, and calsync's runs over it."""

    add: Callable[[str, datetime], str]  # title, start -> the event's id
    move: Callable[[str, datetime], None]
    copy_of: Callable[[str], str]  # the id of calsync's copy with this title
    shown: Callable[[str], list[datetime]]  # the starts a calendar client shows for a title
    context: WorkerContext
    calendar_id: str

    def run(self, full: bool) -> None:
        outcome = run_calendar(self.context, self.calendar_id, "poll", full=full)
        assert outcome.failed == 0 and outcome.stopped_by is None


@pytest.fixture(scope="module")
def radicale() -> Iterator[CalDAVServer]:
    server = start_radicale()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def xandikos() -> Iterator[CalDAVServer]:
    server = start_xandikos()
    yield server
    server.stop()


@pytest.fixture(params=SYSTEMS)
def person(
    request: pytest.FixtureRequest, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> Person:  # fmt: skip
    store[0].add_calendar("wix-s1")
    return PEOPLE[request.param](request, pipeline_settings, engine, store)


def google_person(request: pytest.FixtureRequest, settings: Settings, engine: Engine,
                  store: tuple[StoreState, ServedApp]) -> Person:  # fmt: skip
    world: GoogleWorld = request.getfixturevalue("google_world")
    world.reset()
    google = world.state
    settings = world.settings_for(settings, NOWHERE)
    tokens = world.tokens()
    calendar_id = connect_calendar(engine, Provider.GOOGLE, USER,
                                   credentials=tokens.to_dict(), token_expires_at=tokens.expiry,
                                   external_account_email=USER)  # fmt: skip

    def add(title: str, start: datetime) -> str:
        return str(google.insert_event(USER, {"summary": title, **timed(start)})["id"])

    def move(event_id: str, start: datetime) -> None:
        google.patch_event(USER, event_id, timed(start))

    def copy_of(title: str) -> str:
        (found,) = [e for e in google.stored_events(USER) if e.get("summary") == title]
        return str(found["id"])

    def shown(title: str) -> list[datetime]:
        """Google's occurrence listing, as clients ask for it."""
        query = {"singleEvents": ["true"], "timeMin": [NOW.isoformat()],
                 "timeMax": [SOON.isoformat()]}  # fmt: skip
        items = google.list_events(USER, query)["items"]
        found = [i["start"]["dateTime"] for i in items if i.get("summary") == title]
        return sorted(datetime.fromisoformat(str(start)) for start in found)

    return Person(add, move, copy_of, shown, build_context(settings), calendar_id)


def outlook_person(request: pytest.FixtureRequest, settings: Settings, engine: Engine,
                   store: tuple[StoreState, ServedApp]) -> Person:  # fmt: skip
    outlook: Outlook = request.getfixturevalue("outlook")
    # MSAL must trust the sandbox's login CA.
    request.getfixturevalue("monkeypatch").setenv("REQUESTS_CA_BUNDLE", outlook.graph.tls.ca_path)
    issued = outlook.graph.issue_tokens()
    expiry = datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"]))
    tokens = MicrosoftTokens(issued["access_token"], issued["refresh_token"], expiry,
                             outlook.graph.user.upn)  # fmt: skip
    primary = outlook.graph.state.calendar(outlook.user, None).id
    calendar_id = connect_calendar(engine, Provider.MICROSOFT, primary,
                                   credentials=tokens.to_dict(), token_expires_at=expiry,
                                   external_account_email=outlook.graph.user.upn)  # fmt: skip

    def copy_of(title: str) -> str:
        (found,) = [e for e in outlook.events() if e.content.get("subject") == title]
        return str(found.id)

    def shown(title: str) -> list[datetime]:
        """Graph's calendarView: the occurrences Outlook shows."""
        view = outlook.graph.state.calendar_view(outlook.user, None, NOW, SOON)
        return sorted(i.start for i in view if i.content.get("subject") == title)

    return Person(outlook.add, outlook.move, copy_of, shown,
                  build_context(outlook.settings_for(settings, NOWHERE)), calendar_id)  # fmt: skip


def caldav_person(
    request: pytest.FixtureRequest, settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp], kind: str = "radicale",
) -> Person:  # fmt: skip
    server: CalDAVServer = request.getfixturevalue(kind)
    login = (server.username, server.password) if server.requires_auth else None
    dav = httpx.Client(auth=login)
    request.addfinalizer(dav.close)
    url = f"{server.home_url.rstrip('/')}/cal-{uuid.uuid4().hex[:8]}/"
    assert dav.request("MKCALENDAR", url).status_code == 201
    credentials = {"username": server.username, "password": server.password} if login else {}
    calendar_id = connect_calendar(engine, Provider.CALDAV, httpx.URL(url).path,
                          server_url=server.base_url, credentials=credentials)  # fmt: skip

    def add(title: str, start: datetime) -> str:
        uid = f"{title.lower()}-{uuid.uuid4().hex[:6]}"
        put(f"{uid}.ics", event_ics(uid, start, start + HOUR, title))
        return f"{uid}.ics"

    def put(name: str, text: str) -> None:
        dav.put(f"{url}{name}", content=text,
                headers={"Content-Type": "text/calendar"}).raise_for_status()  # fmt: skip

    def move(name: str, start: datetime) -> None:
        calendar = Calendar.from_ical(dav.get(f"{url}{name}").raise_for_status().text)
        for component in calendar.walk("VEVENT"):
            for prop, value in (("DTSTART", start), ("DTEND", start + HOUR)):
                component.pop(prop)
                component.add(prop, value)
        put(name, calendar.to_ical().decode())

    def copy_of(title: str) -> str:
        names = [n for n in members(dav, url) if f"SUMMARY:{title}" in dav.get(url + n).text]
        (name,) = names
        return name

    def shown(title: str) -> list[datetime]:
        """Each resource expanded as iCalendar says, as a client does."""
        found = []
        for name in members(dav, url):
            calendar = Calendar.from_ical(dav.get(url + name).raise_for_status().text)
            for component in recurring_ical_events.of(calendar).between(NOW, SOON):
                if str(component.get("SUMMARY")) == title:
                    found.append(component.decoded("DTSTART"))
        return sorted(found)

    context = build_context(settings.model_copy(update={"caldav_allow_private": True}))
    return Person(add, move, copy_of, shown, context, calendar_id)


def members(dav: httpx.Client, url: str) -> list[str]:
    """The names of the collection's members (a PROPFIND of depth 1)."""
    answer = dav.request("PROPFIND", url, headers={"Depth": "1"})
    hrefs = [part.split("<", 1)[0] for part in answer.text.split("href>")[1::2]]
    return [h.rsplit("/", 1)[-1] for h in hrefs if h.endswith(".ics")]


def local_person(request: pytest.FixtureRequest, settings: Settings, engine: Engine,
                 store: tuple[StoreState, ServedApp]) -> Person:  # fmt: skip
    alice = store[0].add_calendar(f"alice-{uuid.uuid4().hex[:6]}")
    calendar_id = connect_calendar(engine, Provider.LOCAL, alice.name, server_url=store[1].base_url)

    def move(event_id: str, start: datetime) -> None:
        event = alice.events()[event_id].event
        assert event is not None
        alice.edit(event_id, replace(event, start=start, end=start + HOUR))

    def copy_of(title: str) -> str:
        (found,) = [i for i, e in alice.events().items() if e.event and e.event.title == title]
        return found

    def shown(title: str) -> list[datetime]:
        events = [r.event for r in alice if r.event and r.event.title == title]
        return sorted(as_instant(e.start) for e in events if e.status is not EventStatus.CANCELLED)

    return Person(lambda title, start: alice.add(event(title, start)).id, move, copy_of, shown,
                  build_context(settings), calendar_id)  # fmt: skip


PEOPLE = {"google": google_person, "microsoft": outlook_person, "caldav": caldav_person,
          "xandikos": partial(caldav_person, kind="xandikos"), "local": local_person}  # fmt: skip


def event(title: str, start: datetime) -> CanonicalEvent:
    return CanonicalEvent(title, start, start + HOUR)


def starts(wix: MemoryCalendar, title: str) -> list[Moment]:
    return [e.event.start for e in wix.events().values() if e.event and e.event.title == title]


def test_an_event_moved_beyond_the_window_loses_its_block_and_gets_it_back(
    person: Person, pipeline_settings: Settings, store: tuple[StoreState, ServedApp]
) -> None:
    wix = store[0].calendar("wix-s1")
    beyond = days_ahead(pipeline_settings.sync_window_future_days + 30, 9)
    dentist = person.add("Dentist", INSIDE)
    person.run(full=False)
    assert starts(wix, "Dentist") == [INSIDE]

    for full in (False, True):
        person.move(dentist, beyond)
        person.run(full)
        assert starts(wix, "Dentist") == [], f"full={full}"
        back = INSIDE + (2 if full else 1) * HOUR
        person.move(dentist, back)
        person.run(full)
        assert starts(wix, "Dentist") == [back], f"full={full}"


def test_a_sessions_copy_moved_beyond_the_window_keeps_the_session(
    person: Person, pipeline_settings: Settings, store: tuple[StoreState, ServedApp]
) -> None:
    wix = store[0].calendar("wix-s1")
    beyond = days_ahead(pipeline_settings.sync_window_future_days + 30, 9)
    wix.add(event("Massage", INSIDE))
    person.run(full=False)
    copy = person.copy_of("Massage")

    person.move(copy, beyond)
    for full in (False, True):
        person.run(full)
        # An edit of the copy: under the connection's policy the new time flows back to Wix.
        assert starts(wix, "Massage") == [beyond], f"full={full}"
        assert person.copy_of("Massage") == copy
