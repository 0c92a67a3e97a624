"""Calendar data as a person's CalDAV client writes it, for tests against the real servers of
`sandbox/caldav_servers.py` (Radicale and Xandikos)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import icalendar


def event_ics(
    uid: str,
    start: date | datetime,
    end: date | datetime,
    summary: str = "Dentist",
    *,
    rrule: str | None = None,
    exdates: Sequence[date | datetime] = (),
    overrides: Sequence[tuple[date | datetime, date | datetime, date | datetime, str]] = (),
    extra: Sequence[str] = (),
) -> str:
    """An event as a person's calendar app writes it: VTIMEZONEs included, a master with an
    optional RRULE and EXDATEs, and overrides as (original start, start, end, STATUS or
    summary) — "CANCELLED" makes a cancelled occurrence. `extra` lines go into the master."""
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//A person's calendar app//EN")
    calendar.add("VERSION", "2.0")
    master = _vevent(uid, start, end, summary)
    if rrule:
        master.add("RRULE", icalendar.vRecur.from_ical(rrule))
    if exdates:
        master.add("EXDATE", list(exdates))
    calendar.add_component(master)
    for original, new_start, new_end, what in overrides:
        override = _vevent(uid, new_start, new_end, summary if what == "CANCELLED" else what)
        override.add("RECURRENCE-ID", original)
        if what == "CANCELLED":
            override.add("STATUS", "CANCELLED")
        calendar.add_component(override)
    today = date.today()  # the zones' transitions for any test's dates, whenever it runs
    calendar.add_missing_timezones(first_date=today - timedelta(days=5 * 366),
                                   last_date=today + timedelta(days=10 * 366))  # fmt: skip
    text = calendar.to_ical().decode()
    if extra:
        head, _, tail = text.partition("END:VEVENT")
        text = head + "".join(f"{line}\r\n" for line in extra) + "END:VEVENT" + tail
    return text


def _vevent(
    uid: str, start: date | datetime, end: date | datetime, summary: str
) -> icalendar.Event:
    component = icalendar.Event()
    component.add("UID", uid)
    component.add("DTSTAMP", datetime.now(UTC).replace(microsecond=0))
    component.add("DTSTART", start)
    component.add("DTEND", end)
    component.add("SUMMARY", summary)
    return component
