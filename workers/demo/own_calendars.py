"""Each staff member's own calendar, as they use it in their own app: Alice's Google
calendar, Bob's Outlook calendar and Carol's calendar on a CalDAV server. One interface, one
class per system, so nothing else in the demo asks which system it is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import httpx
import icalendar
from caldav.calendarobjectresource import Event as DAVEvent
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient

from workers.demo.world import CALDAV_USER, GOOGLE_USER, DemoWorld


@dataclass(frozen=True)
class Entry:
    """One event as a person sees it in a calendar."""

    id: str
    title: str
    start: datetime
    end: datetime
    block: bool = False  # on a Wix schedule: calsync's busy block for an external event


class OwnCalendar(Protocol):
    def add(self, title: str, start: datetime, end: datetime) -> str: ...
    def retitle(self, event_id: str, title: str) -> None: ...
    def remove(self, event_id: str) -> None: ...
    def entries(self, start: datetime, end: datetime) -> list[Entry]: ...


def own_calendars(world: DemoWorld) -> dict[str, OwnCalendar]:
    """The demo's systems by the name the status page shows them under."""
    return {"google": GoogleCalendar(world), "outlook": OutlookCalendar(world),
            "caldav": CalDAVCalendar(world)}  # fmt: skip


class GoogleCalendar:
    def __init__(self, world: DemoWorld) -> None:
        self.state = world.google

    def add(self, title: str, start: datetime, end: datetime) -> str:
        body = {"summary": title, "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": end.isoformat()}}  # fmt: skip
        return str(self.state.insert_event(GOOGLE_USER, body)["id"])

    def retitle(self, event_id: str, title: str) -> None:
        self.state.patch_event(GOOGLE_USER, event_id, {"summary": title})

    def remove(self, event_id: str) -> None:
        self.state.delete_event(GOOGLE_USER, event_id)

    def entries(self, start: datetime, end: datetime) -> list[Entry]:
        params = {"singleEvents": ["true"], "orderBy": ["startTime"],
                  "timeMin": [start.isoformat()], "timeMax": [end.isoformat()]}  # fmt: skip
        items = self.state.list_events(GOOGLE_USER, params)["items"]
        return [Entry(str(e["id"]), str(e.get("summary", "")), parse(e["start"]["dateTime"]),
                      parse(e["end"]["dateTime"]))
                for e in items if e.get("status") != "cancelled"]  # fmt: skip


class OutlookCalendar:
    def __init__(self, world: DemoWorld) -> None:
        self.state, self.user = world.graph.state, world.graph.user_id

    def add(self, title: str, start: datetime, end: datetime) -> str:
        body = {"subject": title, "start": _graph_time(start), "end": _graph_time(end)}
        return self.state.create_event(self.user, body, check_access=False)[0].id

    def retitle(self, event_id: str, title: str) -> None:
        self.state.update_event(self.user, event_id, {"subject": title}, check_access=False)

    def remove(self, event_id: str) -> None:
        self.state.delete_event(self.user, event_id, check_access=False)

    def entries(self, start: datetime, end: datetime) -> list[Entry]:
        seen = self.state.calendar_view(self.user, None, start, end)
        return [Entry(i.id, str(i.record.content.get("subject", "")), i.start, i.end)
                for i in seen]  # fmt: skip


class CalDAVCalendar:
    """Carol's "Work" calendar on Radicale, through the caldav library a client app uses."""

    NAME = "work"

    def __init__(self, world: DemoWorld) -> None:
        self.server = world.caldav
        self.home = f"{world.caldav.base_url}{CALDAV_USER}/"

    def make(self) -> None:
        body = ('<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
                "<D:displayname>Work</D:displayname></D:prop></D:set></C:mkcalendar>")  # fmt: skip
        answer = httpx.request("MKCALENDAR", f"{self.home}{self.NAME}/", content=body,
                               auth=self.server.credentials(CALDAV_USER))  # fmt: skip
        answer.raise_for_status()

    def add(self, title: str, start: datetime, end: datetime) -> str:
        uid = f"{uuid.uuid4()}@demo"
        ics = icalendar.Calendar()
        ics.add("PRODID", "-//calsync demo//EN")
        ics.add("VERSION", "2.0")
        event = icalendar.Event()
        for name, value in (("UID", uid), ("DTSTAMP", datetime.now(UTC)), ("DTSTART", start),
                            ("DTEND", end), ("SUMMARY", title)):  # fmt: skip
            event.add(name, value)
        ics.add_component(event)
        self._calendar().save_event(ics.to_ical().decode())
        return uid

    def retitle(self, event_id: str, title: str) -> None:
        found = self._event(event_id)
        found.icalendar_component["SUMMARY"] = title
        found.save()

    def remove(self, event_id: str) -> None:
        self._event(event_id).delete()

    def entries(self, start: datetime, end: datetime) -> list[Entry]:
        found = cast(list[DAVEvent], self._calendar().search(
            start=start, end=end, event=True, expand=True))  # fmt: skip
        return sorted((_caldav_entry(item) for item in found), key=lambda e: e.start)

    def _calendar(self) -> DAVCalendar:
        user, password = self.server.credentials(CALDAV_USER)
        client = DAVClient(self.home, username=user, password=password)
        return client.calendar(url=f"{self.home}{self.NAME}/")

    def _event(self, uid: str) -> DAVEvent:
        return cast(DAVEvent, self._calendar().event_by_uid(uid))


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _caldav_entry(item: DAVEvent) -> Entry:
    found = item.icalendar_component
    return Entry(str(found["UID"]), str(found.get("SUMMARY", "")),
                 aware(found.decoded("DTSTART")), aware(found.decoded("DTEND")))  # fmt: skip


def parse(text: str) -> datetime:
    return aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def aware(moment: Any) -> datetime:
    if not isinstance(moment, datetime):  # an all-day date
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
