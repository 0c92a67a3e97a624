"""What the demo's people do in their own tools: the business owner books, moves and cancels
sessions in Wix; each staff member adds and deletes events in their own calendar (Alice in
Google, Bob in Outlook, Carol on a CalDAV server). Also what each of them sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from workers.demo.own_calendars import CalDAVCalendar, Entry, own_calendars, parse
from workers.demo.world import STAFF_ZONE, DemoWorld

# Who keeps which calendar: staff name -> the system's name in `own_calendars`.
STAFF = (("Alice", "google"), ("Bob", "outlook"), ("Carol", "caldav"))
SYSTEMS = tuple(system for _, system in STAFF)


@dataclass(frozen=True)
class Staff:
    name: str
    system: str  # whose calendar: one of SYSTEMS
    schedule_id: str


class People:
    def __init__(self, world: DemoWorld, instance_id: str) -> None:
        self.world = world
        self.instance_id = instance_id
        self.calendars = own_calendars(world)
        self.staff: list[Staff] = []

    def hire(self) -> list[Staff]:
        """The site's staff schedules, one per calendar system."""
        CalDAVCalendar(self.world).make()  # before anyone may look at Carol's calendar
        for name, system in STAFF:
            schedule = self.world.wix.add_schedule(self.instance_id, name, time_zone=STAFF_ZONE)
            self.staff.append(Staff(name, system, str(schedule["id"])))
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
        return self.calendars[system].add(title, start, start + timedelta(hours=hours))

    def retitle_own(self, system: str, event_id: str, title: str) -> None:
        self.calendars[system].retitle(event_id, title)

    def remove(self, system: str, event_id: str) -> None:
        self.calendars[system].remove(event_id)

    def calendar(self, system: str, start: datetime, end: datetime) -> list[Entry]:
        """What the staff member's own calendar shows in [start, end), occurrences expanded."""
        return self.calendars[system].entries(start, end)


def _local(moment: datetime) -> dict[str, str]:
    return {"localDate": moment.astimezone(ZoneInfo(STAFF_ZONE)).strftime("%Y-%m-%dT%H:%M:%S")}


def _wix_entry(event: dict[str, Any]) -> Entry:
    namespaces = (event.get("extendedFields") or {}).get("namespaces") or {}
    return Entry(str(event["id"]), str(event.get("title", "")),
                 parse(event["start"]["utcDate"]), parse(event["end"]["utcDate"]),
                 block=bool(namespaces.get("@calsync/sync")))  # fmt: skip
