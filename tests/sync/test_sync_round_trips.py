"""End to end over two in-memory calendars: round trips settle, crashes resume cleanly."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sync_builders import CONNECTION, event
from sync_runner import Connection

from providers.errors import TransientError
from providers.local.memory import MemoryCalendar, SimulatedCrash, ticking_clock
from sync.event import (
    CanonicalEvent,
    ExternalCalendarOverrides,
    Recurrence,
    Transparency,
    same_content,
)
from sync.link import link_id_for
from sync.mapping import copy_of
from sync.policy import ConnectionPolicy, Privacy
from sync.side import Side
from sync.snapshot import RemoteEvent


def connect(**options: Any) -> Connection:
    clock = ticking_clock()
    conn = ConnectionPolicy(CONNECTION, "google", **options)
    return Connection(MemoryCalendar("wix", clock=clock), MemoryCalendar("ext", clock=clock), conn)


def memory(conn: Connection, side: Side) -> MemoryCalendar:
    store = conn.store(side)
    assert isinstance(store, MemoryCalendar)
    return store


def only(store: MemoryCalendar) -> tuple[str, CanonicalEvent]:
    """The id and content of the one event a calendar holds."""
    (item,) = store.events().values()
    assert item.event is not None
    return item.id, item.event


@pytest.mark.parametrize("origin", list(Side))
@pytest.mark.parametrize("privacy", list(Privacy))
@pytest.mark.parametrize(
    "overrides", [None, ExternalCalendarOverrides(title="Class", description="Shown")]
)
@pytest.mark.parametrize("full", [False, True])
def test_a_write_observed_again_changes_nothing(
    origin: Side, privacy: Privacy, overrides: ExternalCalendarOverrides | None, full: bool
) -> None:
    conn = connect(privacy=privacy)
    source = memory(conn, origin)
    original = event("Yoga", description="Bring a mat  \n", location=" Studio 1")
    source.add(original, overrides=overrides if origin is Side.WIX else None)

    first, applied = conn.sync(full=full)
    assert [a.reason.value for a in first.writes] == [
        "CREATED_IN_WIX" if origin is Side.WIX else "CREATED_EXTERNALLY"
    ]
    assert not applied.failed
    for _ in range(2):  # our write comes back (as a change notice, then in a full listing)
        again, _ = conn.sync(full=full)
        assert again.actions == (), again.actions
        full = True
    _, copy = only(memory(conn, origin.other))
    assert same_content(copy, copy_of(origin, original, conn.policy, overrides))


@pytest.mark.parametrize(
    ("options", "origin", "edit", "reason"),
    [
        ({"privacy": Privacy.BUSY_ONLY}, Side.WIX, {"title": "Lunch"}, "REVERTED_DERIVED_FIELD"),
        ({"privacy": Privacy.BUSY_ONLY}, Side.EXTERNAL, {"title": "Me"}, "REVERTED_DERIVED_FIELD"),
        ({}, Side.EXTERNAL, {"transparency": Transparency.FREE}, "REVERTED_DERIVED_FIELD"),
        ({"import_enabled": False}, Side.WIX, {"title": "Mine"}, "REVERTED_MIRROR"),
        ({"read_only": True}, Side.EXTERNAL, {"title": "Mine"}, "REVERTED_MIRROR"),
    ],
)
def test_an_edit_of_a_field_that_does_not_flow_back_is_reverted_once(
    options: dict[str, Any], origin: Side, edit: dict[str, Any], reason: str
) -> None:
    conn = connect(**options)
    source, copies = memory(conn, origin), memory(conn, origin.other)
    source.add(event("Yoga"))
    conn.sync()
    copy_id, before = only(copies)
    copies.edit(copy_id, replace(before, **edit))

    revert, _ = conn.sync()
    assert [a.reason.value for a in revert.writes] == [reason]
    assert only(copies) == (copy_id, before)
    settled, _ = conn.sync()
    assert settled.actions == ()  # no ping-pong
    assert only(source)[1] == event("Yoga")


@pytest.mark.parametrize("after_applying", [False, True])
@pytest.mark.parametrize("crash_after", [0, 1, 2, 3])
def test_a_run_that_dies_midway_resumes_without_repeating_or_duplicating(
    crash_after: int, after_applying: bool
) -> None:
    conn = connect()
    wix, ext = memory(conn, Side.WIX), memory(conn, Side.EXTERNAL)
    for i in range(4):
        wix.add(event(f"Session {i}", hour=i))
    ext.faults.crash_after_writes = crash_after
    ext.faults.crash_after_applying = after_applying
    with pytest.raises(SimulatedCrash):
        conn.sync()
    made = ext.writes
    assert len(conn.links) == crash_after  # only finished writes were recorded

    conn.sync()
    assert ext.writes == 4  # what was written is never written again
    assert made == crash_after + (1 if after_applying else 0)
    titles = sorted(e.event.title for e in ext.events().values() if e.event)
    assert titles == [f"Session {i}" for i in range(4)]  # one copy each
    assert len(conn.links) == 4
    settled, _ = conn.sync(full=True)
    assert settled.actions == ()


def test_a_failed_write_is_retried_by_the_next_run() -> None:
    conn = connect()
    wix, ext = memory(conn, Side.WIX), memory(conn, Side.EXTERNAL)
    wix.add(event())
    ext.faults.fail_writes = 1
    _first, applied = conn.sync()
    assert [type(e) for _, e in applied.failed] == [TransientError]
    assert conn.links == {}
    _second, applied = conn.sync(full=True)
    assert not applied.failed and len(ext.events()) == 1


def test_a_merge_interrupted_between_its_writes_is_finished_later() -> None:
    """Someone makes a block all-day: the merge writes the external event (which fails) and
    removes the block (which works). The base remembers the owed write; the next run does it."""
    conn = connect()
    wix, ext = memory(conn, Side.WIX), memory(conn, Side.EXTERNAL)
    origin = ext.add(event("Dentist"))
    conn.sync()
    block_id, block = only(wix)
    wix.edit(block_id, replace(block, all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4)))
    ext.faults.fail_writes = 1
    _, applied = conn.sync()
    assert len(applied.failed) == 1 and wix.events() == {}
    owed, applied = conn.sync(full=True)
    assert [a.reason.value for a in owed.writes] == ["RESYNC"] and not applied.failed
    assert only(ext) == (origin.id, all_day_of(origin.event))
    assert wix.events() == {}  # an all-day event does not block time by default
    settled, _ = conn.sync(full=True)
    assert settled.actions == ()


def all_day_of(timed: CanonicalEvent | None) -> CanonicalEvent:
    assert timed is not None
    return replace(timed, all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4))


def test_a_series_exception_lands_on_the_copy_of_its_series() -> None:
    conn = connect()
    wix, ext = memory(conn, Side.WIX), memory(conn, Side.EXTERNAL)
    series = wix.add(event("Weekly", recurrence=Recurrence(rule="FREQ=WEEKLY;BYDAY=MO")))
    moved = event("Moved", hour=3)
    moved = replace(moved, recurrence=Recurrence(series_id=series.id, original_start=moved.start))
    wix.add(moved)
    conn.sync()
    copies = {e.event.title: e for e in ext.events().values() if e.event}
    assert set(copies) == {"Weekly", "Moved"}
    moved_copy = copies["Moved"].event
    assert moved_copy is not None and moved_copy.recurrence is not None
    assert moved_copy.recurrence.series_id == copies["Weekly"].id
    wix.remove(series.id)  # the series takes its exception along, on both sides
    conn.sync()
    assert ext.events() == {} and conn.links == {}


class ShortTitles(MemoryCalendar):
    """A provider that silently cuts titles to ten characters when it stores them."""

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        return super().update(event_id, replace(event, title=event.title[:10]), if_match)


def test_a_provider_that_coerces_what_it_stores_does_not_cause_ping_pong() -> None:
    clock = ticking_clock()
    wix = ShortTitles("wix", clock=clock)
    ext = MemoryCalendar("ext", clock=clock)
    conn = Connection(wix, ext, ConnectionPolicy(CONNECTION, "google"))
    wix.add(event("Yoga"))
    conn.sync()
    copy_id, copy = only(ext)
    ext.edit(copy_id, replace(copy, title="Yoga for beginners"))
    back, _ = conn.sync()
    assert [a.reason.value for a in back.writes] == ["UPDATED_EXTERNALLY"]
    assert only(wix)[1].title == "Yoga for b"
    follow, _ = conn.sync()  # the copy follows what Wix accepted
    assert [a.reason.value for a in follow.writes] == ["RESYNC"]
    assert only(ext)[1].title == "Yoga for b"
    for _ in range(2):
        settled, _ = conn.sync(full=True)
        assert settled.actions == ()


def test_a_crash_after_removing_a_block_never_reads_as_the_block_deleted_by_hand() -> None:
    """The block was made all-day in Wix: the external update fails, the block's removal is
    applied but its reply is lost. The next run must not take the missing block for a
    person's deletion (which would delete the external event)."""
    conn = connect()
    wix, ext = memory(conn, Side.WIX), memory(conn, Side.EXTERNAL)
    origin = ext.add(event("Dentist"))
    conn.sync()
    block_id, block = only(wix)
    wix.edit(block_id, replace(block, all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4)))
    ext.faults.fail_writes = 1
    wix.faults.crash_after_writes, wix.faults.crash_after_applying = 0, True
    with pytest.raises(SimulatedCrash):
        conn.sync()
    assert wix.events() == {}
    conn.sync(full=True)
    assert only(ext) == (origin.id, all_day_of(origin.event))  # the edit arrived, nothing lost
    settled, _ = conn.sync(full=True)
    assert settled.actions == ()


def test_exceptions_go_with_their_series_and_every_lost_edit_is_recorded() -> None:
    """An external series becomes all-day: its Wix block series goes, and with it an
    exception someone made on the block, and that exception's external copy. Both had
    fresh edits; both losses are recorded."""
    conn = connect()
    wix, ext = memory(conn, Side.WIX), memory(conn, Side.EXTERNAL)
    series = ext.add(event("Weekly", recurrence=Recurrence(rule="FREQ=WEEKLY;BYDAY=MO")))
    conn.sync()
    block_id, block = only(wix)
    slot = block.start + timedelta(days=7)
    exception = wix.add(
        replace(
            block, title="Moved", recurrence=Recurrence(series_id=block_id, original_start=slot)
        )
    )
    conn.sync()
    link = conn.links[link_id_for(CONNECTION, Side.WIX, exception.id)]
    assert link.external_id is not None
    assert exception.event is not None
    wix.edit(exception.id, replace(exception.event, title="Wix edit"))
    copy = ext.get(link.external_id).event
    assert copy is not None
    ext.edit(link.external_id, replace(copy, title="External edit"))
    assert series.event is not None
    ext.edit(series.id, all_day_of(series.event))

    result, applied = conn.sync(full=True)
    assert not applied.failed
    lost = [c for c in result.conflicts if c.link_id == link.link_id]
    assert sorted((c.field, c.reason.value, c.winner) for c in lost) == [
        ("deleted", "DELETE_WINS", Side.EXTERNAL),  # the Wix exception's edit
        ("deleted", "DELETE_WINS", Side.WIX),  # the external copy's edit
    ]
    assert wix.events() == {}
    assert set(ext.events()) == {series.id}
    settled, _ = conn.sync(full=True)
    assert settled.actions == ()
