"""Import: full and incremental listings against real Radicale and Xandikos, edits and deletes
made on either side, expired sync tokens, and the CTag listing for servers without RFC 6578."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import WINDOW, Setup
from harness.caldav_servers import event_ics

from providers.base import SyncWindow
from providers.caldav.cursor import Cursor
from providers.errors import CursorExpired
from sync.event import CanonicalEvent
from sync.snapshot import RemoteEvent

T = datetime(2027, 3, 10, 14, tzinfo=UTC)


def by_id(changes: tuple[RemoteEvent, ...]) -> dict[str, RemoteEvent]:
    return {item.id: item for item in changes}


def title_of(item: RemoteEvent) -> str:
    assert item.event is not None
    return item.event.title


def person_renames(setup: Setup, uid: str, title: str) -> None:
    event = setup.person_event(uid)
    component = event.icalendar_component
    component.pop("SUMMARY")
    component.add("SUMMARY", title)
    event.save()


def test_full_listing_lists_the_window(dav: Setup) -> None:
    dav.add(event_ics("in", T, T + timedelta(hours=1), "Dentist"))
    dav.add(event_ics("before", datetime(2026, 6, 1, 9, tzinfo=UTC),
                           datetime(2026, 6, 1, 10, tzinfo=UTC), "Long ago"))  # fmt: skip
    dav.add(event_ics("day", date(2027, 5, 1), date(2027, 5, 2), "Holiday"))

    page = dav.provider.list_changes(None)

    assert page.complete
    items = by_id(page.changes)
    assert sorted(map(title_of, items.values())) == ["Dentist", "Holiday"]
    dentist = next(i for i in items.values() if title_of(i) == "Dentist")
    assert dentist.event is not None and dentist.marker is None
    assert dentist.event.start == T and dentist.event.end == T + timedelta(hours=1)
    assert dentist.version and dentist.version.startswith('"')  # the ETag


def test_incremental_listing_shows_what_the_person_changed(dav: Setup) -> None:
    dav.add(event_ics("stays", T, T + timedelta(hours=1), "Stays"))
    dav.add(event_ics("edited", T + timedelta(days=1), T + timedelta(days=1, hours=1)))
    dav.add(event_ics("deleted", T + timedelta(days=2), T + timedelta(days=2, hours=1)))
    first = dav.provider.list_changes(None)
    ids = {title_of(i) if i.event else "": i.id for i in first.changes}
    deleted_id = next(i.id for i in first.changes if i.id.startswith("deleted"))

    dav.add(event_ics("new", T + timedelta(days=3), T + timedelta(days=3, hours=1), "New"))
    person_renames(dav, "edited", "Edited")
    dav.person_event("deleted").delete()
    later = dav.calendar().list_changes(first.next_cursor)  # a later run, a new object

    assert not later.complete
    changes = by_id(later.changes)
    assert ids["Stays"] not in changes
    assert changes[deleted_id].deleted
    assert sorted(title_of(i) for i in changes.values() if not i.deleted) == ["Edited", "New"]
    edited = next(i for i in changes.values() if not i.deleted and title_of(i) == "Edited")
    assert edited.version != by_id(first.changes)[edited.id].version
    assert dav.provider.list_changes(later.next_cursor).changes == ()


def test_our_writes_come_back_as_echoes_with_our_marker(dav: Setup) -> None:
    first = dav.provider.list_changes(None)
    event = CanonicalEvent("Session: yoga", T, T + timedelta(hours=1), location="Studio 2")

    created = dav.provider.create(event, "link-1:0", marker="calsync:conn:link-1")
    later = dav.provider.list_changes(first.next_cursor)

    assert [i.id for i in later.changes] == [created.id]
    echo = later.changes[0]
    assert echo.version == created.version
    assert echo.marker == "calsync:conn:link-1"
    assert echo.event == created.event
    assert echo.event is not None and echo.event.location == "Studio 2"


def test_edit_on_either_side(dav: Setup) -> None:
    event = CanonicalEvent("Session", T, T + timedelta(hours=1))
    created = dav.provider.create(event, "k:0", marker="calsync:c:l")
    cursor = dav.provider.list_changes(None).next_cursor
    uid = created.id.removesuffix(".ics")

    person_renames(dav, uid, "Renamed by the person")
    seen = dav.provider.list_changes(cursor)
    [renamed] = seen.changes
    assert title_of(renamed) == "Renamed by the person"
    assert renamed.marker == "calsync:c:l"  # the person's app kept our property

    moved = CanonicalEvent("Session", T + timedelta(hours=2), T + timedelta(hours=3))
    updated = dav.provider.update(renamed.id, moved, renamed.version)
    component = dav.person_event(uid).icalendar_component
    assert component.start == T + timedelta(hours=2)
    assert str(component["SUMMARY"]) == "Session"
    assert [i.version for i in dav.provider.list_changes(seen.next_cursor).changes] == [
        updated.version
    ]


def test_delete_on_either_side(dav: Setup) -> None:
    ours = dav.provider.create(CanonicalEvent("Ours", T, T + timedelta(hours=1)), "o:0",
                                    marker="calsync:c:o")  # fmt: skip
    dav.add(event_ics("theirs", T, T + timedelta(hours=1), "Theirs"))
    first = dav.provider.list_changes(None)
    theirs = next(i for i in first.changes if i.id != ours.id)

    dav.person_event(ours.id.removesuffix(".ics")).delete()
    dav.provider.delete(theirs.id, theirs.version)
    dav.provider.delete(theirs.id, theirs.version)  # again: already gone, done

    later = dav.provider.list_changes(first.next_cursor)
    assert {i.id for i in later.changes if i.deleted} == {ours.id, theirs.id}
    assert dav.person_events() == []
    assert dav.provider.get(theirs.id).deleted


def test_an_expired_sync_token_raises_cursor_expired(dav: Setup) -> None:
    cursor = Cursor.decode(dav.provider.list_changes(None).next_cursor)
    # A token in the server's own format that it never issued (or has forgotten).
    cursor.token = cursor.token[:-8] + "00000000"

    with pytest.raises(CursorExpired) as expired:
        dav.provider.list_changes(cursor.encode())
    # The server's DAV:valid-sync-token answer (Radicale 403, Xandikos 412), no fallback.
    assert "no longer knows the sync token" in str(expired.value)


def test_an_unreadable_cursor_raises_cursor_expired(dav: Setup) -> None:
    with pytest.raises(CursorExpired):
        dav.provider.list_changes("cd1.not-base64-zlib")
    with pytest.raises(CursorExpired):
        dav.provider.list_changes("some other provider's cursor")


def test_without_sync_collection_the_ctag_and_etags_say_what_changed(dav: Setup) -> None:
    provider = dav.calendar(sync_collection=False)
    dav.add(event_ics("a", T, T + timedelta(hours=1), "A"))
    dav.add(event_ics("b", T, T + timedelta(hours=1), "B"))
    first = provider.list_changes(None)
    assert Cursor.decode(first.next_cursor).mode == "ctag"
    b_id = next(i.id for i in first.changes if title_of(i) == "B")

    before = dav.counter.calls
    unchanged = provider.list_changes(first.next_cursor)
    assert unchanged.changes == ()
    assert dav.counter.calls - before == 1  # the CTag alone

    person_renames(dav, "a", "A2")
    dav.person_event("b").delete()
    dav.add(event_ics("c", T, T + timedelta(hours=1), "C"))
    later = provider.list_changes(unchanged.next_cursor)
    changes = by_id(later.changes)
    assert changes[b_id].deleted
    assert sorted(title_of(i) for i in changes.values() if not i.deleted) == ["A2", "C"]
    assert provider.list_changes(later.next_cursor).changes == ()


def test_a_moved_window_lists_the_occurrences_it_now_covers(dav: Setup) -> None:
    start = datetime(2027, 1, 6, 9, tzinfo=UTC)  # a Wednesday, every week from then on
    dav.add(event_ics("weekly", start, start + timedelta(hours=1), rrule="FREQ=WEEKLY"))
    first = dav.provider.list_changes(None)
    assert len(first.changes) == 52  # Wednesdays of 2027 from the 6th
    assert all(i.event is not None and i.event.recurrence is None for i in first.changes)

    later_window = SyncWindow(WINDOW.start + timedelta(days=30), WINDOW.end + timedelta(days=30))
    later = dav.calendar(later_window).list_changes(first.next_cursor)

    gone = sorted(i.id for i in later.changes if i.deleted)
    # Jan 6-27 are now before the window, as a full listing would omit them.
    assert gone == [f"weekly.ics#202701{d:02d}T090000Z" for d in (6, 13, 20, 27)]
    new = {i.id for i in later.changes if not i.deleted} - {i.id for i in first.changes}
    assert new == {"weekly.ics#20280105T090000Z", "weekly.ics#20280112T090000Z",
                   "weekly.ics#20280119T090000Z", "weekly.ics#20280126T090000Z"}  # fmt: skip


def test_durations_floating_times_and_missing_ends_are_read(dav: Setup) -> None:
    ics = event_ics("d", T, T, "Placeholder")
    dav.add(ics.replace("DTEND:20270310T140000Z", "DURATION:PT90M"))
    floating = event_ics("f", T, T + timedelta(hours=1), "Floating")
    dav.add(floating.replace("T140000Z", "T140000").replace("T150000Z", "T150000"))
    dav.add(event_ics("n", date(2027, 4, 2), date(2027, 4, 3), "No end").replace(
        "DTEND;VALUE=DATE:20270403\r\n", ""))  # fmt: skip

    events = {title_of(i): i.event for i in dav.provider.list_changes(None).changes}

    placeholder = events["Placeholder"]
    assert placeholder is not None and isinstance(placeholder.start, datetime)
    assert placeholder.end == placeholder.start + timedelta(minutes=90)
    assert events["Floating"] is not None and events["Floating"].start == T  # read as UTC
    assert events["No end"] is not None and events["No end"].end == date(2027, 4, 3)


def test_list_window_lists_what_overlaps_it(dav: Setup) -> None:
    dav.add(event_ics("early", T, T + timedelta(hours=1), "Early"))
    dav.add(event_ics("late", T + timedelta(days=5), T + timedelta(days=5, hours=1), "Late"))
    listed = dav.provider.list_window(T - timedelta(days=1), T + timedelta(days=1))
    assert [title_of(i) for i in listed] == ["Early"]


def test_tasks_in_a_mixed_calendar_are_not_events(dav: Setup) -> None:
    dav.add(event_ics("meeting", T, T + timedelta(hours=1), "Meeting"))
    todo = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//app//EN", "BEGIN:VTODO", "UID:todo-1",
        "DTSTAMP:20270101T000000Z", "SUMMARY:Buy milk", "END:VTODO", "END:VCALENDAR", "",
    ])  # fmt: skip
    dav.person.add_todo(todo)

    first = dav.provider.list_changes(None)
    assert [title_of(i) for i in first.changes] == ["Meeting"]
    assert dav.calendar(sync_collection=False).list_changes(None).changes == first.changes
