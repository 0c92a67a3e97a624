"""What the demo's people do in their own tools: the business owner books, moves and cancels
sessions in Wix; each staff member adds and deletes events in their own calendar (Alice in
Google, Bob in Outlook, Carol on a CalDAV server). Also what each of them sees."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import icalendar
from caldav.calendarobjectresource import Event as DAVEvent
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient

from workers.demo.world import CALDAV_USER, GOOGLE_USER, STAFF_ZONE, DemoWorld

SYSTEMS = ("google", "outlook", "caldav")
CALDAV_CALENDAR = "work"


@dataclass(frozen=True)
class Staff:
    name: str
    system: str  # whose calendar: one of SYSTEMS
    schedule_id: str


@dataclass(frozen=True)
class Entry:
    """One event as a person sees it in a calendar."""

    id: str
    title: str
    start: datetime
    end: datetime
    block: bool = False  # on a Wix schedule: calsync's busy block for an external event


class People:
    def __init__(self, world: DemoWorld, instance_id: str) -> None:
        self.world = world
        self.instance_id = instance_id
        self.outlook_user = world.graph.user_id
        self.staff: list[Staff] = []

    def hire(self) -> list[Staff]:
        """The site's staff schedules, one per calendar system."""
        for name, system in (("Alice", "google"), ("Bob", "outlook"), ("Carol", "caldav")):
            schedule = self.world.wix.add_schedule(self.instance_id, name, time_zone=STAFF_ZONE)
            self.staff.append(Staff(name, system, str(schedule["id"])))
        _make_caldav_calendar(self.world)
        return self.staff

    # -- the business owner, in Wix ------------------------------------------------------------

    def book(self, staff: Staff, title: str, start: datetime, hours: float = 1,
             **fields: Any) -> str:  # fmt: skip
        body = {"scheduleId": staff.schedule_id, "title": title, "timeZone": STAFF_ZONE,
                "start": _local(start), "end": _local(start + timedelta(hours=hours)), **fields}
        return str(self.world.wix.create_event(self.instance_id, body)["id"])

    def move(self, event_id: str, start: datetime, hours: float = 1) -> None:
        moved = {"id": event_id, "start": _local(start),
                 "end": _local(start + timedelta(hours=hours))}  # fmt: skip
        self.world.wix.update_event(self.instance_id, moved, require_revision=False)

    def retitle(self, event_id: str, title: str) -> None:
        self.world.wix.update_event(self.instance_id, {"id": event_id, "title": title},
                                    require_revision=False)  # fmt: skip

    def cancel(self, event_id: str) -> None:
        self.world.wix.cancel_event(self.instance_id, event_id)

    def schedule(self, staff: Staff, start: datetime, end: datetime) -> list[Entry]:
        """The staff member's Wix schedule in [start, end): sessions and busy blocks."""
        request = {"fromLocalDate": _local(start)["localDate"],
                   "toLocalDate": _local(end)["localDate"], "timeZone": STAFF_ZONE,
                   "query": {"filter": {"scheduleId": staff.schedule_id},
                             "cursorPaging": {"limit": 500}}}  # fmt: skip
        found = self.world.wix.query_events(self.instance_id, request)["events"]
        return [_wix_entry(e) for e in found if e.get("status") != "CANCELLED"]

    # -- the staff, in their own calendars -----------------------------------------------------

    def add_busy(self, system: str, title: str, start: datetime, hours: float = 1) -> str:
        end = start + timedelta(hours=hours)
        if system == "google":
            body = {"summary": title, "start": {"dateTime": start.isoformat()},
                    "end": {"dateTime": end.isoformat()}}  # fmt: skip
            return str(self.world.google.insert_event(GOOGLE_USER, body)["id"])
        if system == "outlook":
            body = {"subject": title, "start": _graph_time(start), "end": _graph_time(end)}
            made, _ = self.world.graph.state.create_event(self.outlook_user, body,
                                                          check_access=False)  # fmt: skip
            return made.id
        return _put_caldav(self.world, title, start, end)

    def retitle_own(self, system: str, event_id: str, title: str) -> None:
        if system == "google":
            self.world.google.patch_event(GOOGLE_USER, event_id, {"summary": title})
        elif system == "outlook":
            self.world.graph.state.update_event(self.outlook_user, event_id, {"subject": title},
                                                check_access=False)  # fmt: skip
        else:
            found = cast(DAVEvent, _caldav_calendar(self.world).event_by_uid(event_id))
            found.icalendar_component["SUMMARY"] = title
            found.save()

    def remove(self, system: str, event_id: str) -> None:
        if system == "google":
            self.world.google.delete_event(GOOGLE_USER, event_id)
        elif system == "outlook":
            self.world.graph.state.delete_event(self.outlook_user, event_id, check_access=False)
        else:
            found = cast(DAVEvent, _caldav_calendar(self.world).event_by_uid(event_id))
            found.delete()

    def calendar(self, system: str, start: datetime, end: datetime) -> list[Entry]:
        """What the staff member's own calendar shows in [start, end), occurrences expanded."""
        if system == "google":
            params = {"singleEvents": ["true"], "orderBy": ["startTime"],
                      "timeMin": [start.isoformat()], "timeMax": [end.isoformat()]}  # fmt: skip
            items = self.world.google.list_events(GOOGLE_USER, params)["items"]
            return [_google_entry(e) for e in items if e.get("status") != "cancelled"]
        if system == "outlook":
            seen = self.world.graph.state.calendar_view(self.outlook_user, None, start, end)
            return [Entry(i.id, str(i.record.content.get("subject", "")), i.start, i.end)
                    for i in seen]  # fmt: skip
        found = cast(list[DAVEvent], _caldav_calendar(self.world).search(
            start=start, end=end, event=True, expand=True))
        return sorted((_caldav_entry(item) for item in found), key=lambda e: e.start)


def _local(moment: datetime) -> dict[str, str]:
    return {"localDate": moment.astimezone(ZoneInfo(STAFF_ZONE)).strftime("%Y-%m-%dT%H:%M:%S")}


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _wix_entry(event: dict[str, Any]) -> Entry:
    namespaces = (event.get("extendedFields") or {}).get("namespaces") or {}
    return Entry(str(event["id"]), str(event.get("title", "")),
                 _parse(event["start"]["utcDate"]), _parse(event["end"]["utcDate"]),
                 block=bool(namespaces.get("@calsync/sync")))  # fmt: skip


def _google_entry(event: dict[str, Any]) -> Entry:
    return Entry(str(event["id"]), str(event.get("summary", "")),
                 _parse(event["start"]["dateTime"]), _parse(event["end"]["dateTime"]))  # fmt: skip


def _caldav_entry(item: DAVEvent) -> Entry:
    found = item.icalendar_component
    return Entry(str(found["UID"]), str(found.get("SUMMARY", "")),
                 _aware(found.decoded("DTSTART")), _aware(found.decoded("DTEND")))  # fmt: skip


def _parse(text: str) -> datetime:
    return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _aware(moment: Any) -> datetime:
    if not isinstance(moment, datetime):  # an all-day date
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _caldav_home(world: DemoWorld) -> str:
    return f"{world.caldav.base_url}{CALDAV_USER}/"


def _make_caldav_calendar(world: DemoWorld) -> None:
    body = ('<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            "<D:displayname>Work</D:displayname></D:prop></D:set></C:mkcalendar>")  # fmt: skip
    answer = httpx.request("MKCALENDAR", f"{_caldav_home(world)}{CALDAV_CALENDAR}/",
                           content=body, auth=world.caldav.credentials(CALDAV_USER))  # fmt: skip
    answer.raise_for_status()


def _caldav_calendar(world: DemoWorld) -> DAVCalendar:
    user, password = world.caldav.credentials(CALDAV_USER)
    client = DAVClient(_caldav_home(world), username=user, password=password)
    return client.calendar(url=f"{_caldav_home(world)}{CALDAV_CALENDAR}/")


def _put_caldav(world: DemoWorld, title: str, start: datetime, end: datetime) -> str:
    uid = f"{uuid.uuid4()}@demo"
    ics = icalendar.Calendar()
    ics.add("PRODID", "-//calsync demo//EN")
    ics.add("VERSION", "2.0")
    event = icalendar.Event()
    for name, value in (("UID", uid), ("DTSTAMP", datetime.now(UTC)), ("DTSTART", start),
                        ("DTEND", end), ("SUMMARY", title)):  # fmt: skip
        event.add(name, value)
    ics.add_component(event)
    _caldav_calendar(world).save_event(ics.to_ical().decode())
    return uid
