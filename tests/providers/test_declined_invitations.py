"""Invitations the calendar's owner declined read as `declined`, on every provider that has
invitations: Google (their `self` attendee entry), Graph (`responseStatus`), CalDAV (their
ATTENDEE's PARTSTAT, found by their addresses) on real Radicale and Xandikos. Tentative and
unanswered stay busy, and calsync's own writes leave every answer as it was."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from harness.google import BASE, USER, GoogleWorld, timed
from harness.microsoft import signed_in

from providers.base import CalendarInfo, CalendarProvider, SyncWindow
from providers.caldav.account import CalDAVAccount
from providers.microsoft.calendar import MicrosoftCalendar
from sandbox.caldav_servers import CalDAVServer, start_radicale
from sandbox.graph.errors import GraphError
from sandbox.graph.harness import GraphHarness, graph_harness
from sync.event import CanonicalEvent
from sync.snapshot import RemoteEvent

BOSS = "boss@example.net"
NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = SyncWindow(NOW - timedelta(days=1), NOW + timedelta(days=30))
START = (NOW + timedelta(days=4)).replace(minute=0, second=0)


def read(calendar: CalendarProvider, event_id: str) -> CanonicalEvent:
    event = calendar.get(event_id).event
    assert event is not None
    return event


def listed(calendar: CalendarProvider, cursor: str | None) -> tuple[dict[str, RemoteEvent], str]:
    page = calendar.list_changes(cursor)
    return {item.id: item for item in page.changes}, page.next_cursor


def reads_each_answer(
    calendar: CalendarProvider,
    event_id: str,
    answer: Callable[[str], object],
    answers: tuple[tuple[str, bool], ...],
    cursor: str | None = None,
) -> None:
    """Unanswered, the invitation is busy; then each answer in turn reads as `declined` or
    not, both as an incremental change and by itself."""
    if cursor is None:
        _, cursor = listed(calendar, None)
    assert not read(calendar, event_id).declined
    for given, declined in answers:
        answer(given)
        changes, cursor = listed(calendar, cursor)
        changed = changes[event_id].event
        assert changed is not None and changed.declined is declined, given
        assert read(calendar, event_id).declined is declined


def retitled(calendar: CalendarProvider, event_id: str) -> None:
    """calsync writes the event back (a Wix edit flowing to its origin)."""
    current = calendar.get(event_id)
    assert current.event is not None
    calendar.update(event_id, replace(current.event, title="Planning (moved)"), current.version)


# -- Google ----------------------------------------------------------------------------------


@pytest.fixture
def google(world: GoogleWorld) -> CalendarProvider:
    world.reset()
    return world.calendar()


def google_attendees(answer: str) -> list[dict[str, Any]]:
    return [
        {"email": BOSS, "organizer": True, "responseStatus": "accepted"},
        {"email": USER, "responseStatus": answer},
        {"email": "carol@example.net", "responseStatus": "declined", "self": True},  # not hers
    ]


def test_google_reads_the_owners_answer(world: GoogleWorld, google: CalendarProvider) -> None:
    body = {"summary": "Planning", **timed(BASE), "attendees": google_attendees("needsAction")}
    event_id = str(world.state.insert_event(USER, body)["id"])

    def answer(given: str) -> None:
        world.state.patch_event(USER, event_id, {"attendees": google_attendees(given)})

    answers = (("tentative", False), ("declined", True), ("accepted", False))
    reads_each_answer(google, event_id, answer, answers)


def test_google_writes_leave_the_answers_alone(
    world: GoogleWorld, google: CalendarProvider
) -> None:
    body = {"summary": "Planning", **timed(BASE), "attendees": google_attendees("declined")}
    event_id = str(world.state.insert_event(USER, body)["id"])
    retitled(google, event_id)
    stored = world.state.get_event(USER, event_id)
    assert stored["summary"] == "Planning (moved)"
    answers = {a["email"]: a["responseStatus"] for a in stored["attendees"]}
    assert answers == {BOSS: "accepted", USER: "declined", "carol@example.net": "declined"}
    assert read(google, event_id).declined


# -- Microsoft Graph -------------------------------------------------------------------------


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


@pytest.fixture
def outlook(graph: GraphHarness) -> Iterator[MicrosoftCalendar]:
    account = signed_in(graph)
    primary = next(c for c in account.list_calendars() if c.primary)
    yield account.calendar(CalendarInfo(primary.remote_id, primary=True), WINDOW)
    account.close()


def graph_body() -> dict[str, Any]:
    def at(moment: datetime) -> dict[str, str]:
        return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

    return {"subject": "Planning", "start": at(START), "end": at(START + timedelta(hours=1))}


def test_graph_reads_the_owners_answer(graph: GraphHarness, outlook: MicrosoftCalendar) -> None:
    organizer = {"name": "Boss", "address": BOSS}
    event_id = graph.state.invite(graph.user.id, graph_body(), organizer).id

    def answer(given: str) -> None:
        graph.state.respond(graph.user.id, event_id, given)

    answers = (("tentativelyAccepted", False), ("declined", True), ("accepted", False))
    reads_each_answer(outlook, event_id, answer, answers)


def test_graph_writes_leave_the_answer_alone(
    graph: GraphHarness, outlook: MicrosoftCalendar
) -> None:
    event_id = graph.state.invite(graph.user.id, graph_body(), {"address": BOSS}).id
    graph.state.respond(graph.user.id, event_id, "declined")
    retitled(outlook, event_id)
    instance = graph.state.get_instance(graph.user.id, event_id)
    assert instance.content["subject"] == "Planning (moved)"
    invitation = instance.record.invitation
    assert invitation is not None and invitation.response == "declined"
    assert read(outlook, event_id).declined


def test_the_graph_sandbox_refuses_answers_it_does_not_know(graph: GraphHarness) -> None:
    own = graph.state.create_event(graph.user.id, graph_body(), check_access=False)[0].id
    with pytest.raises(GraphError):
        graph.state.respond(graph.user.id, own, "declined")  # one's own meeting
    invited = graph.state.invite(graph.user.id, graph_body(), {"address": BOSS}).id
    answer = requests.post(
        f"{graph.api.base_url}/_sandbox/users/{graph.user.id}/events/{invited}/response",
        json={"response": "maybe"},
        timeout=5,
    )
    assert answer.status_code == 400


# -- CalDAV ----------------------------------------------------------------------------------

OWN_ADDRESS = "owner@example.test"


@pytest.fixture(scope="module")
def radicale_by_email() -> Iterator[CalDAVServer]:
    """Radicale has no scheduling: the owner is known by a username that is an address."""
    server = start_radicale(users={OWN_ADDRESS: "owner-secret"}, user=OWN_ADDRESS)
    yield server
    server.stop()


@pytest.fixture(params=["radicale", "xandikos"])
def owned(
    request: pytest.FixtureRequest, radicale_by_email: CalDAVServer, caldav_pool: Any
) -> Iterator[tuple[CalDAVServer, str]]:
    if request.param == "radicale":
        yield radicale_by_email, OWN_ADDRESS
        return
    server = caldav_pool.get("xandikos")
    client = DAVClient(url=server.base_url, username=server.username, password=server.password)
    principal = str(client.principal().url)
    address = f"{server.username}@example.test"
    client.proppatch(principal, ADDRESS_SET.format(address=address))  # RFC 6638's property
    yield server, address.upper()  # addresses compare case-insensitively


ADDRESS_SET = (
    '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><C:calendar-user-address-set>'
    "<D:href>mailto:{address}</D:href></C:calendar-user-address-set></D:prop></D:set>"
    "</D:propertyupdate>"
)


def invitation(uid: str, address: str, partstat: str) -> str:
    stamp = f"{START:%Y%m%dT%H%M%SZ}"
    end = f"{START + timedelta(hours=1):%Y%m%dT%H%M%SZ}"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//invitations//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{stamp}\r\nDTSTART:{stamp}\r\nDTEND:{end}\r\nSUMMARY:Planning\r\n"
        f"ORGANIZER;CN=Boss:mailto:{BOSS}\r\n"
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BOSS}\r\n"
        f"ATTENDEE;PARTSTAT=DECLINED:mailto:someone.else@example.net\r\n"
        f"ATTENDEE;CN=Owner;PARTSTAT={partstat};RSVP=TRUE:mailto:{address}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def person_calendar(server: CalDAVServer) -> Calendar:
    client = DAVClient(url=server.base_url, username=server.username, password=server.password)
    cal_id = f"cal-{uuid.uuid4().hex[:10]}"
    calendar = client.principal().make_calendar(name=cal_id, cal_id=cal_id)
    assert isinstance(calendar, Calendar)
    return calendar


@dataclass
class Invited:
    """An invitation in a fresh calendar, the provider on it, and what the person can do."""

    person: Calendar
    account: CalDAVAccount
    calendar: CalendarProvider
    uid: str
    address: str
    event_id: str
    cursor: str

    def answer(self, partstat: str) -> None:
        stored = self.person.get_event_by_uid(self.uid)
        stored.data = invitation(self.uid, self.address, partstat)
        stored.save()

    def later_run(self) -> CalendarProvider:
        return self.account.calendar(CalendarInfo(str(self.person.url)), WINDOW)


@contextmanager
def invited(server: CalDAVServer, address: str, partstat: str) -> Iterator[Invited]:
    person = person_calendar(server)
    account = CalDAVAccount(server.base_url, server.username, server.password, allow_private=True)
    calendar = account.calendar(CalendarInfo(str(person.url)), WINDOW)
    uid = f"invite-{uuid.uuid4().hex[:8]}"
    person.add_event(invitation(uid, address, partstat))
    changes, cursor = listed(calendar, None)
    (event_id,) = changes
    try:
        yield Invited(person, account, calendar, uid, address, event_id, cursor)
    finally:
        account.close()


def test_caldav_reads_the_owners_partstat(owned: tuple[CalDAVServer, str]) -> None:
    with invited(*owned, "NEEDS-ACTION") as invite:
        answers = (("TENTATIVE", False), ("DECLINED", True), ("ACCEPTED", False))
        reads_each_answer(invite.calendar, invite.event_id, invite.answer, answers, invite.cursor)
        assert not read(invite.later_run(), invite.event_id).declined  # a later run agrees


def test_caldav_without_the_owners_address_reads_no_answer(radicale_by_email: CalDAVServer) -> None:
    with invited(radicale_by_email, "nobody@example.net", "DECLINED") as invite:
        assert not read(invite.calendar, invite.event_id).declined


def test_caldav_writes_leave_the_partstats_alone(owned: tuple[CalDAVServer, str]) -> None:
    with invited(*owned, "DECLINED") as invite:
        retitled(invite.calendar, invite.event_id)
        text = invite.person.get_event_by_uid(invite.uid).data.replace("\r\n ", "")
        assert "SUMMARY:Planning (moved)" in text
        assert f"PARTSTAT=DECLINED;RSVP=TRUE:mailto:{invite.address}" in text
        assert f"PARTSTAT=ACCEPTED:mailto:{BOSS}" in text
        assert read(invite.later_run(), invite.event_id).declined
