"""A CalDAV member whose data calsync cannot read lists as unreadable, never as deleted.

Xandikos stores what it is given, so a person's app can leave a malformed event on it. Radicale
refuses such data when it is written, so there the event a person sees stays the one calsync
reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from caldav.collection import Calendar
from conftest import ServerPool, account_for, new_calendar
from harness.caldav_servers import event_ics

from providers.base import CalendarInfo, SyncWindow
from providers.caldav.account import CalDAVAccount
from providers.caldav.calendar import CalDAVCalendar
from sandbox.caldav_servers import CalDAVServer
from sync.snapshot import RemoteEvent

START = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)
WINDOW = SyncWindow(START - timedelta(days=30), START + timedelta(days=60))


def without_dtstart(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith("DTSTART"))  # fmt: skip


def with_broken_rule(text: str) -> str:
    return text.replace("RRULE:FREQ=DAILY;COUNT=5", "RRULE:FREQ=DAILY;UNTIL=whenever")


class Person:
    """The calendar as someone's app writes it: whole resources by href, malformed or not."""

    def __init__(self, server: CalDAVServer, calendar: Calendar) -> None:
        self.server, self.url = server, str(calendar.url)
        self.texts: dict[str, str] = {}

    def put(self, uid: str, text: str) -> httpx.Response:
        auth = self.server.credentials(self.server.username) if self.server.requires_auth else None
        self.texts[uid] = text
        return httpx.put(f"{self.url}{uid}.ics", content=text, auth=auth,
                         headers={"Content-Type": "text/calendar"})  # fmt: skip


@pytest.fixture
def xandikos(caldav_pool: ServerPool) -> CalDAVServer:
    return caldav_pool.get("xandikos")


@pytest.fixture
def setup(xandikos: CalDAVServer) -> Iterator[tuple[Person, CalDAVAccount, str]]:
    calendar = new_calendar(xandikos)
    account = account_for(xandikos)
    yield Person(xandikos, calendar), account, str(calendar.url)
    account.close()


def provider(account: CalDAVAccount, url: str) -> CalDAVCalendar:
    return account.calendar(CalendarInfo(url), WINDOW)  # a new run's


def listed(items: tuple[RemoteEvent, ...]) -> dict[str, RemoteEvent]:
    return {item.id: item for item in items}


def seed(person: Person) -> None:
    hour = timedelta(hours=1)
    for uid, text in {
        "dentist": event_ics("dentist", START, START + hour, "Dentist"),
        "standup": event_ics("standup", START, START + hour, "Standup",
                             rrule="FREQ=DAILY;COUNT=5"),
        "lunch": event_ics("lunch", START + 3 * hour, START + 4 * hour, "Lunch"),
    }.items():  # fmt: skip
        assert person.put(uid, text).status_code == 201


def test_a_malformed_event_lists_as_unreadable_and_the_rest_as_usual(
    setup: tuple[Person, CalDAVAccount, str],
) -> None:
    person, account, url = setup
    seed(person)
    first = provider(account, url).list_changes(None)
    before = listed(first.changes)
    standups = sorted(i for i in before if i.startswith("standup.ics#"))
    assert len(standups) == 5 and {"dentist.ics", "lunch.ics"} <= set(before)

    assert person.put("dentist", without_dtstart(person.texts["dentist"])).is_success
    assert person.put("standup", with_broken_rule(person.texts["standup"])).is_success
    later = provider(account, url).list_changes(first.next_cursor)

    changes = listed(later.changes)
    assert not any(item.deleted for item in later.changes)
    assert set(changes) == {"dentist.ics", *standups}  # lunch did not change
    assert "DTSTART" in str(changes["dentist.ics"].unreadable)
    assert all(changes[i].unreadable for i in standups)

    full = listed(provider(account, url).list_changes(None).changes)
    assert full["dentist.ics"].unreadable and full["standup.ics"].unreadable
    assert full["lunch.ics"].event is not None and full["lunch.ics"].event.title == "Lunch"
    assert provider(account, url).get(standups[0]).unreadable


def test_a_repaired_event_lists_again(setup: tuple[Person, CalDAVAccount, str]) -> None:
    person, account, url = setup
    seed(person)
    good = person.texts["dentist"]
    person.put("dentist", without_dtstart(good))
    first = provider(account, url).list_changes(None)
    assert listed(first.changes)["dentist.ics"].unreadable

    person.put("dentist", good.replace("Dentist", "Dentist (moved)"))
    again = listed(provider(account, url).list_changes(first.next_cursor).changes)

    dentist = again["dentist.ics"]
    assert dentist.unreadable is None and dentist.event is not None
    assert dentist.event.title == "Dentist (moved)"


def test_a_task_is_not_an_event_and_not_reported(setup: tuple[Person, CalDAVAccount, str]) -> None:
    person, account, url = setup
    todo = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//app//EN\r\nBEGIN:VTODO\r\nUID:todo\r\n"
        "DTSTAMP:20270101T000000Z\r\nSUMMARY:Buy milk\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    assert person.put("todo", todo).is_success
    assert provider(account, url).list_changes(None).changes == ()


def test_radicale_refuses_what_calsync_could_not_read(caldav_pool: ServerPool) -> None:
    radicale = caldav_pool.get("radicale")
    calendar = new_calendar(radicale)
    person = Person(radicale, calendar)
    seed(person)

    for broken in (without_dtstart(person.texts["dentist"]),
                   with_broken_rule(person.texts["standup"])):  # fmt: skip
        assert person.put(broken.split("UID:")[1].split("\r\n")[0], broken).status_code == 400

    account = account_for(radicale)
    try:
        items = provider(account, str(calendar.url)).list_changes(None).changes
    finally:
        account.close()
    assert not any(item.unreadable for item in items)
    assert {"dentist.ics", "lunch.ics"} <= set(listed(items))
