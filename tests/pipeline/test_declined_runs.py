"""An invitation in the staff member's calendar, end to end through calsync's runs, on Google,
Outlook and CalDAV (Xandikos): unanswered and tentative it blocks their Wix time; declined, its
block goes (incremental and full runs agree); accepted later, the block comes back.

The runs are driven in this process (`run_calendar`), one after another: each run's outcome is
its own positive signal, so nothing waits."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from harness.google import BASE, USER, GoogleWorld, timed
from harness.microsoft import BASE as OUTLOOK_BASE
from harness.microsoft import Outlook
from harness.pipeline import NOWHERE, connect_calendar
from sqlalchemy import Engine

from config import Settings
from models import Provider
from providers.local.memory import MemoryCalendar
from providers.microsoft.auth import MicrosoftTokens
from sandbox.caldav_servers import CalDAVServer, start_xandikos
from sandbox.server import ServedApp
from sandbox.store import StoreState
from tasks.context import WorkerContext, build_context
from tasks.runner import run_calendar

HOUR = timedelta(hours=1)
BOSS = "boss@example.net"
Answer = Callable[[str], object]  # the staff member answers: "needs", "tentative", ...


@pytest.fixture(scope="module")
def xandikos() -> Iterator[CalDAVServer]:
    server = start_xandikos()
    yield server
    server.stop()


def blocks(wix: MemoryCalendar) -> list[str]:
    return sorted(e.event.title for e in wix.events().values() if e.event)


def answers_decide_the_block(
    context: WorkerContext, wix: MemoryCalendar, calendar_id: str, answer: Answer
) -> None:
    def synced(full: bool = False) -> list[str]:
        outcome = run_calendar(context, calendar_id, "poll", full=full)
        assert outcome.failed == 0 and outcome.stopped_by is None
        return blocks(wix)

    assert synced() == ["Planning"]  # not answered yet: the time is held
    answer("tentative")
    assert synced() == ["Planning"]
    answer("declined")
    assert synced() == []
    assert synced(full=True) == []  # a full listing does not bring it back
    answer("accepted")
    assert synced() == ["Planning"]


def test_a_google_invitation_declined_then_accepted(
    google_world: GoogleWorld, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> None:  # fmt: skip
    google = google_world.state
    google_world.reset()
    settings = google_world.settings_for(pipeline_settings, NOWHERE)
    wix = store[0].add_calendar("wix-s1")

    def attendees(status: str) -> dict[str, Any]:
        return {"attendees": [{"email": BOSS, "organizer": True, "responseStatus": "accepted"},
                              {"email": USER, "responseStatus": status}]}  # fmt: skip

    body = {"summary": "Planning", **timed(BASE), **attendees("needsAction")}
    invitation = str(google.insert_event(USER, body)["id"])
    tokens = google_world.tokens()
    calendar_id = connect_calendar(engine, Provider.GOOGLE, USER,
                                   credentials=tokens.to_dict(), token_expires_at=tokens.expiry,
                                   external_account_email=USER)  # fmt: skip

    def answer(status: str) -> None:
        google.patch_event(USER, invitation, attendees(status))

    answers_decide_the_block(build_context(settings), wix, calendar_id, answer)


def test_an_outlook_invitation_declined_then_accepted(
    outlook: Outlook, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", outlook.graph.tls.ca_path)  # MSAL trusts the CA
    settings = outlook.settings_for(pipeline_settings, NOWHERE)
    graph, user = outlook.graph.state, outlook.user
    wix = store[0].add_calendar("wix-s1")

    def at(moment: datetime) -> dict[str, str]:
        return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

    body = {"subject": "Planning", "start": at(OUTLOOK_BASE), "end": at(OUTLOOK_BASE + HOUR)}
    invitation = graph.invite(user, body, {"name": "Boss", "address": BOSS}).id
    issued = outlook.graph.issue_tokens()
    expiry = datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"]))
    tokens = MicrosoftTokens(issued["access_token"], issued["refresh_token"], expiry,
                             outlook.graph.user.upn)  # fmt: skip
    calendar_id = connect_calendar(engine, Provider.MICROSOFT, graph.calendar(user, None).id,
                          credentials=tokens.to_dict(), token_expires_at=expiry,
                          external_account_email=outlook.graph.user.upn)  # fmt: skip
    words = {"tentative": "tentativelyAccepted", "declined": "declined", "accepted": "accepted"}

    def answer(status: str) -> None:
        graph.respond(user, invitation, words[status])

    answers_decide_the_block(build_context(settings), wix, calendar_id, answer)


ADDRESS_SET = (
    '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><C:calendar-user-address-set>'
    "<D:href>mailto:staff@example.test</D:href></C:calendar-user-address-set></D:prop></D:set>"
    "</D:propertyupdate>"
)


def test_a_caldav_invitation_declined_then_accepted(
    xandikos: CalDAVServer, pipeline_settings: Settings, engine: Engine,
    store: tuple[StoreState, ServedApp],
) -> None:  # fmt: skip
    context = build_context(pipeline_settings.model_copy(update={"caldav_allow_private": True}))
    wix = store[0].add_calendar("wix-s1")
    principal = xandikos.home_url.removesuffix("calendars/")
    answer_set = httpx.request("PROPPATCH", principal, content=ADDRESS_SET,
                               headers={"Content-Type": "application/xml"})  # fmt: skip
    assert answer_set.status_code == 207, answer_set.text  # the staff member's address
    url = f"{xandikos.home_url.rstrip('/')}/cal-{uuid.uuid4().hex[:8]}/"
    assert httpx.request("MKCALENDAR", url).status_code == 201
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)

    def answer(partstat: str) -> None:
        stamp, end = f"{start:%Y%m%dT%H%M%SZ}", f"{start + HOUR:%Y%m%dT%H%M%SZ}"
        text = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//invitations//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:planning\r\nDTSTAMP:{stamp}\r\nDTSTART:{stamp}\r\n"
            f"DTEND:{end}\r\nSUMMARY:Planning\r\nORGANIZER:mailto:{BOSS}\r\n"
            f"ATTENDEE;PARTSTAT={partstat.upper()}:mailto:Staff@Example.test\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        put = httpx.put(f"{url}planning.ics", content=text,
                        headers={"Content-Type": "text/calendar"})  # fmt: skip
        put.raise_for_status()

    answer("needs-action")
    calendar_id = connect_calendar(engine, Provider.CALDAV, httpx.URL(url).path,
                          server_url=xandikos.base_url, credentials={})  # fmt: skip
    answers_decide_the_block(context, wix, calendar_id, answer)
