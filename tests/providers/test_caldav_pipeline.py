"""The provider under calsync's own sync path (`read_side`, `sync.plan`, `apply_plan`), with a
`MemoryCalendar` as the Wix side: exports and imports settle, and a second run finds nothing
to do (what the provider hands back after a write is what it lists later). An expired sync
token is a full listing reconciled by the links (nothing made again); a person's edit between
the listing and our write makes the If-Match fail, and the next run plans again from both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from caldav import Event
from conftest import Setup
from harness.caldav_servers import event_ics

from providers.base import CalendarProvider
from providers.caldav.cursor import Cursor
from providers.errors import PreconditionFailed
from providers.local.memory import MemoryCalendar
from sync.actions import Action, SaveLink, Update
from sync.event import CanonicalEvent, EventStatus, Recurrence
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot
from tasks.apply import Applied, DictLinkStore, apply_plan, read_side

LONDON = ZoneInfo("Europe/London")


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2027, 3, day, hour, tzinfo=LONDON)


@dataclass
class Connection:
    setup: Setup
    wix: MemoryCalendar = field(default_factory=lambda: MemoryCalendar("wix"))
    links: DictLinkStore = field(default_factory=DictLinkStore)
    cursors: dict[Side, str | None] = field(default_factory=lambda: dict.fromkeys(Side))

    def sync(self) -> list[Action]:
        """One run that must go through; returns the writes it made."""
        applied = self.run()
        assert not applied.failed and applied.stopped_by is None, applied.failed
        return writes(applied)

    def run(self, meanwhile: Callable[[], None] = lambda: None) -> Applied:
        """One run, as `tasks.runner` does it: `meanwhile` happens between the listing and the
        writes; the cursors move on only when every action went through."""
        providers: dict[Side, CalendarProvider] = {
            Side.WIX: self.wix, Side.EXTERNAL: self.setup.calendar(),
        }  # fmt: skip
        snapshots: dict[Side, SideSnapshot] = {}
        cursors: dict[Side, str | None] = dict.fromkeys(Side)
        for side in Side:
            snapshots[side], cursors[side] = read_side(providers[side], side, self.cursors[side])
        policy = ConnectionPolicy(owner_id="conn", tag="caldav")
        links = list(self.links.links.values())
        result = plan(snapshots[Side.WIX], snapshots[Side.EXTERNAL], links, policy)
        meanwhile()
        applied = apply_plan(result, providers, self.links)
        if not applied.failed and applied.stopped_by is None:
            self.cursors = cursors
        return applied


def writes(applied: Applied) -> list[Action]:
    return [a for a in applied.done if not isinstance(a, SaveLink)]


def updated_sides(done: list[Action]) -> list[Side]:
    """The sides the run's writes updated; any other kind of write fails the test."""
    assert all(isinstance(a, Update) for a in done), done
    return sorted(a.side for a in done if isinstance(a, Update))


def person_sets(setup: Setup, uid: str, name: str, value: datetime | str) -> None:
    event = setup.person_event(uid)
    component = event.icalendar_component
    component.pop(name, None)
    component.add(name, value)
    event.save()


def test_an_exported_series_settles(dav: Setup) -> None:
    connection = Connection(dav)
    series = add_session(connection, at(1), Recurrence(rule="FREQ=WEEKLY;BYDAY=MO;COUNT=5"))
    add_session(connection, at(9, 11), Recurrence(series_id=series.id, original_start=at(8)))
    cancelled = Recurrence(series_id=series.id, original_start=at(15))
    add_session(connection, at(15), cancelled, EventStatus.CANCELLED)

    assert len(connection.sync()) == 3  # the series and its two exceptions
    assert connection.sync() == []
    assert connection.sync() == []
    [stored] = dav.person_events()
    text = str(stored.data)
    # The cancelled occurrence is an EXDATE on the master, as clients hide it.
    assert text.count("BEGIN:VEVENT") == 2 and "EXDATE" in text
    assert "STATUS:CANCELLED" not in text and "SEQUENCE" not in text
    assert client_starts(stored) == [at(1), at(9, 11), at(22), at(29)]


def add_session(
    connection: Connection,
    start: datetime,
    recurrence: Recurrence,
    status: EventStatus = EventStatus.CONFIRMED,
) -> RemoteEvent:
    """A Pilates session (a series, or one occurrence of it) in Wix."""
    return connection.wix.add(CanonicalEvent(
        "Pilates", start, start + timedelta(hours=1), time_zone="Europe/London",
        status=status, recurrence=recurrence,
    ))  # fmt: skip


def client_starts(stored: Event) -> list[datetime]:
    """The occurrences a calendar client shows: the series expanded as iCalendar says."""
    query = recurring_ical_events.of(stored.icalendar_instance)
    return sorted(c.decoded("DTSTART") for c in query.between(at(1), at(30)))


def test_a_session_cancelled_later_leaves_an_exdate_and_no_override(dav: Setup) -> None:
    connection = Connection(dav)
    series = add_session(connection, at(1), Recurrence(rule="FREQ=WEEKLY;BYDAY=MO;COUNT=3"))
    slot = Recurrence(series_id=series.id, original_start=at(8))
    moved = add_session(connection, at(9, 11), slot)
    assert len(connection.sync()) == 2
    assert moved.event is not None
    connection.wix.edit(moved.id, replace(moved.event, status=EventStatus.CANCELLED))

    assert len(connection.sync()) == 1  # the copy's override gives way to an EXDATE
    assert connection.sync() == []
    [stored] = dav.person_events()
    text = str(stored.data)
    assert text.count("BEGIN:VEVENT") == 1 and "EXDATE" in text
    assert client_starts(stored) == [at(1), at(15)]
    connection.cursors = dict.fromkeys(Side)  # a full run reads the EXDATE back as an echo
    assert connection.sync() == []


def test_imports_follow_the_persons_edits_and_deletes(dav: Setup) -> None:
    connection = Connection(dav)
    dav.add(event_ics("dentist", at(3, 14), at(3, 15), "Dentist"))
    dav.add(event_ics("gym", at(4, 7), at(4, 8), "Gym", rrule="FREQ=DAILY;COUNT=3"))

    assert len(connection.sync()) == 4  # one busy block per occurrence
    assert connection.sync() == []
    titles = sorted(e.event.title for e in connection.wix if e.event)
    assert titles == ["Dentist", "Gym", "Gym", "Gym"]

    event = dav.person_event("dentist")
    component = event.icalendar_component
    component.pop("DTSTART")
    component.pop("DTEND")
    component.add("DTSTART", at(3, 16))
    component.add("DTEND", at(3, 17))
    event.save()
    gym = dav.person_event("gym")
    gym.icalendar_component.add("EXDATE", at(5, 7))
    gym.save()

    assert len(connection.sync()) == 2  # the block moved, one occurrence's block deleted
    blocks = sorted((e.event.start, e.event.title) for e in connection.wix if e.event)
    assert (at(3, 16), "Dentist") in blocks and (at(5, 7), "Gym") not in blocks
    assert len(blocks) == 3
    assert connection.sync() == []


def test_an_expired_sync_token_is_a_full_listing_reconciled_by_the_links(dav: Setup) -> None:
    connection = Connection(dav)
    connection.wix.add(CanonicalEvent("Massage", at(2, 10), at(2, 11), time_zone="Europe/London"))
    dav.add(event_ics("dentist", at(3, 14), at(3, 15), "Dentist"))
    assert len(connection.sync()) == 2  # the session out, the block in
    person_sets(dav, "dentist", "SUMMARY", "Dentist (moved)")
    cursor = Cursor.decode(connection.cursors[Side.EXTERNAL] or "")
    cursor.token = cursor.token[:-8] + "00000000"  # one the server never issued
    connection.cursors[Side.EXTERNAL] = cursor.encode()

    done = connection.sync()

    # The full listing met every event its links know: only the person's edit is news.
    assert updated_sides(done) == [Side.WIX]
    assert len(dav.person_events()) == 2
    assert sorted(e.event.title for e in connection.wix if e.event) == [
        "Dentist (moved)", "Massage"]  # fmt: skip
    assert connection.sync() == []


def test_an_edit_between_listing_and_writing_is_planned_again(dav: Setup) -> None:
    connection = Connection(dav)
    session = connection.wix.add(CanonicalEvent("Massage", at(2, 10), at(2, 11)))
    assert len(connection.sync()) == 1
    [copy] = dav.person_events()
    uid = str(copy.icalendar_component["UID"])
    connection.wix.update(session.id, CanonicalEvent("Deep massage", at(2, 10), at(2, 11)), None)

    late = connection.run(meanwhile=lambda: person_sets(dav, uid, "LOCATION", "Room 9"))

    [(action, error)] = late.failed
    assert isinstance(action, Update) and action.side is Side.EXTERNAL
    assert isinstance(error, PreconditionFailed)  # If-Match met the person's version
    done = connection.sync()  # both edits are seen again, and merged (different fields)
    assert updated_sides(done) == sorted([Side.EXTERNAL, Side.WIX])
    [stored] = dav.person_events()
    assert "SUMMARY:Deep massage" in str(stored.data) and "LOCATION:Room 9" in str(stored.data)
    [(title, location)] = [(e.event.title, e.event.location) for e in connection.wix if e.event]
    assert (title, location) == ("Deep massage", "Room 9")
    assert connection.sync() == []
