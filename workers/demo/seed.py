"""The demo's first week: sessions booked in Wix (one of them a weekly class) and a few events
each staff member already had in their own calendar. Dates are relative to today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from workers.demo.people import People, Staff
from workers.demo.world import STAFF_ZONE

SESSIONS = {  # staff -> (day from tomorrow, local hour, title)
    "Alice": [(0, 10, "Massage: Dana"), (2, 14, "Massage: Eli"), (4, 11, "Massage: Fay")],
    "Bob": [(0, 9, "Physio: Gus"), (1, 16, "Physio: Hana"), (3, 10, "Physio: Ivo")],
    "Carol": [(1, 8, "Personal training: Jo"), (2, 18, "Personal training: Kim")],
}
OWN_EVENTS = {  # staff -> (day from tomorrow, local hour, title)
    "Alice": [(0, 13, "Dentist"), (3, 9, "Car service")],
    "Bob": [(1, 12, "Lunch with Sam"), (4, 15, "School play")],
    "Carol": [(0, 17, "School run"), (3, 19, "Book club")],
}


def seed(people: People) -> None:
    for staff in people.staff:
        for day, hour, title in SESSIONS[staff.name]:
            people.book(staff, title, local_time(day, hour))
        for day, hour, title in OWN_EVENTS[staff.name]:
            people.add_busy(staff.system, title, local_time(day, hour))
    book_weekly_class(people, people.staff[0])


def book_weekly_class(people: People, staff: Staff) -> str:
    """A yoga class every week on the day after tomorrow, for four weeks."""
    first = local_time(1, 18)
    weekday = first.astimezone(ZoneInfo(STAFF_ZONE)).strftime("%A").upper()
    until = (first + timedelta(weeks=3, hours=2)).astimezone(ZoneInfo(STAFF_ZONE))
    rule = {"frequency": "WEEKLY", "days": [weekday],
            "until": {"localDate": until.strftime("%Y-%m-%dT%H:%M:%S")}}  # fmt: skip
    return people.book(staff, "Yoga class", first, recurrenceRule=rule)


def local_time(day: int, hour: int) -> datetime:
    """`hour` o'clock in the staff's zone, `day` days after tomorrow."""
    tomorrow = datetime.now(ZoneInfo(STAFF_ZONE)).date() + timedelta(days=1 + day)
    moment = datetime(tomorrow.year, tomorrow.month, tomorrow.day, hour,
                      tzinfo=ZoneInfo(STAFF_ZONE))  # fmt: skip
    return moment.astimezone(UTC)
