"""What a CalDAV listing shows of events outside the sync window (issue 19, item 9): someone
else's event only while it overlaps the window; calsync's own copies however far ahead they
are (a copy moved there is an edit), but not once they ended before the window (they are gone
with their sessions, which Wix no longer lists either). On Radicale and Xandikos."""

from __future__ import annotations

from datetime import timedelta

from conftest import WINDOW, Setup
from harness.caldav_servers import event_ics

from sync.event import CanonicalEvent

HOUR = timedelta(hours=1)
BEFORE, INSIDE, AFTER = WINDOW.start - 5 * HOUR, WINDOW.start + 5 * HOUR, WINDOW.end + 5 * HOUR


def titles(setup: Setup, cursor: str | None = None) -> list[str]:
    page = setup.calendar().list_changes(cursor)
    return sorted(i.event.title for i in page.changes if i.event is not None)


def test_a_listing_keeps_calsyncs_copies_ahead_of_the_window_and_no_one_else_s(
    dav: Setup,
) -> None:
    for title, start in (("Before", BEFORE), ("Inside", INSIDE), ("After", AFTER)):
        dav.add(event_ics(title.lower(), start, start + HOUR, title))
        copy = CanonicalEvent(f"Our {title}", start, start + HOUR)
        dav.provider.create(copy, f"our-{title}:0", marker=f"calsync:c:{title}")

    assert titles(dav) == ["Inside", "Our After", "Our Inside"]


def test_a_changed_event_outside_the_window_is_a_tombstone(dav: Setup) -> None:
    dav.add(event_ics("dentist", INSIDE, INSIDE + HOUR, "Dentist"))
    ours = dav.provider.create(CanonicalEvent("Massage", INSIDE, INSIDE + HOUR), "massage:0",
                               marker="calsync:c:massage")  # fmt: skip
    cursor = dav.calendar().list_changes(None).next_cursor
    moved = dav.person_event("dentist")
    for name, value in (("DTSTART", AFTER), ("DTEND", AFTER + HOUR)):
        moved.icalendar_component.pop(name)
        moved.icalendar_component.add(name, value)
    moved.save()
    dav.provider.update(ours.id, CanonicalEvent("Massage", BEFORE, BEFORE + HOUR), ours.version)

    changes = dav.calendar().list_changes(cursor).changes
    assert {(i.id, i.deleted) for i in changes} == {("dentist.ics", True), (ours.id, True)}
