"""Connecting by credentials, listing calendars (read-only ones flagged from the server's
privileges), and the per-server limit on concurrent requests."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from caldav.lib.error import AuthorizationError
from conftest import WINDOW, CallCounter, account_for, new_calendar, person_client
from harness.caldav_servers import event_ics
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.base import CalendarInfo
from providers.caldav.account import CalDAVAccount, writable
from providers.caldav.http import InvalidCredentials, Member
from providers.errors import PermanentError, PermanentReason
from sandbox.caldav_servers import RADICALE_ADMIN, CalDAVServer
from sandbox.server import ServedApp, serve_in_thread

T = datetime(2027, 4, 1, 9, tzinfo=UTC)
ICS = {"Content-Type": "text/calendar"}
MKCALENDAR_TEAM = (
    '<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>Team</D:displayname></D:prop></D:set></C:mkcalendar>"
)


def test_verify_discovers_the_calendar_home(caldav_server: CalDAVServer) -> None:
    assert account_for(caldav_server).verify() == caldav_server.home_url


def test_wrong_password_is_a_clear_error_and_nothing_is_kept(radicale: CalDAVServer) -> None:
    secret = "not-alices-password-" + uuid.uuid4().hex
    account = CalDAVAccount(radicale.base_url, radicale.username, secret, allow_private=True)

    with pytest.raises(InvalidCredentials) as refused:
        account.verify()

    error = refused.value
    assert isinstance(error, PermanentError) and error.reason is PermanentReason.TOKEN_REVOKED
    assert "refused the username or password" in str(error)
    assert secret not in str(error) and secret not in repr(error.args)
    with pytest.raises(InvalidCredentials):
        account.list_calendars()  # nothing was discovered, nothing was kept


def test_list_calendars_shows_event_calendars_only(caldav_server: CalDAVServer) -> None:
    events = new_calendar(caldav_server)
    tasks = new_calendar(caldav_server, components=["VTODO"])

    listed = {c.remote_id: c for c in account_for(caldav_server).list_calendars()}

    assert str(events.url) in listed and str(tasks.url) not in listed
    info = listed[str(events.url)]
    assert info.name == events.get_display_name() and not info.read_only


def test_a_calendar_without_write_privilege_is_read_only(radicale: CalDAVServer) -> None:
    # Radicale's rights give alice read access only to her `readonly-*` collections; the
    # admin (standing for whoever shares it with her) creates and fills one.
    writable = new_calendar(radicale)
    url = f"{radicale.home_url}readonly-{uuid.uuid4().hex[:8]}/"
    admin = person_client(radicale, RADICALE_ADMIN)
    made = admin.mkcalendar(url, MKCALENDAR_TEAM)
    assert made.status == 201
    shared_event = event_ics("shared", T, T + timedelta(hours=1), "Team offsite")
    assert admin.put(url + "shared.ics", shared_event, ICS).status == 201

    account = account_for(radicale)
    listed = {c.remote_id: c for c in account.list_calendars()}

    assert listed[url].read_only and listed[url].name == "Team"
    assert not listed[str(writable.url)].read_only
    team = account.calendar(CalendarInfo(url, read_only=True), WINDOW)
    [shared] = team.list_changes(None).changes
    assert shared.event is not None and shared.event.title == "Team offsite"
    # The flag is the server's word: alice's own write is refused there.
    with pytest.raises(AuthorizationError):
        person_client(radicale).put(url + "mine.ics", event_ics("mine", T, T), ICS)


def test_write_privileges_are_read_from_the_privilege_set() -> None:
    def member(*privileges: str) -> Member:
        xml = "".join(f"<D:privilege><D:{p}/></D:privilege>" for p in privileges)
        element = etree.fromstring(
            f'<D:current-user-privilege-set xmlns:D="DAV:">{xml}</D:current-user-privilege-set>'
        )
        return Member("/c/", None, {element.tag: element})

    assert not writable(member("read", "read-current-user-privilege-set"))
    assert writable(member("read", "write-content"))
    assert writable(member("all"))
    assert writable(Member("/c/", None, {}))  # a server that does not say


@dataclass
class CountingServer:
    """A loopback DAV endpoint that answers slowly and records how many requests it had in
    flight at once, and how many it answered."""

    served: ServedApp
    in_flight: int = 0
    most: int = 0
    answered: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.served.port}/dav/"


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    state: list[CountingServer] = []
    lock = threading.Lock()

    async def answer(request: Request) -> Response:
        server = state[0]
        with lock:
            server.in_flight += 1
            server.most = max(server.most, server.in_flight)
        await asyncio.sleep(0.15)
        with lock:
            server.in_flight -= 1
            server.answered += 1
        body = '<?xml version="1.0"?><multistatus xmlns="DAV:"/>'
        return Response(body, status_code=207, media_type="application/xml")

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["PROPFIND", "GET"])])
    served = serve_in_thread(app)
    state.append(CountingServer(served))
    yield state[0]
    served.stop()


def test_concurrent_requests_to_one_server_are_limited(counting_server: CountingServer) -> None:
    counter = CallCounter()
    url = counting_server.url

    def account() -> CalDAVAccount:
        return CalDAVAccount(url, "u", "p", allow_private=True, max_concurrent=2,
                             before_request=counter)  # fmt: skip

    accounts = [account() for _ in range(6)]
    threads = [
        threading.Thread(target=lambda a=a: a.client.propfind(counting_server.url, "", depth=0))
        for a in accounts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert counting_server.answered == 6
    assert counting_server.most == 2
    assert counter.calls == 6  # before_request: once per request sent
