"""The in-memory calendar: the provider contract, and each fault it can inject."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.base import CalendarProvider
from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    RateLimited,
    TransientError,
)
from providers.local.memory import Faults, MemoryCalendar, SimulatedCrash, ticking_clock
from sync.event import CanonicalEvent, Recurrence
from sync.side import Side
from sync.snapshot import RemoteEvent

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)


def event(title: str = "Yoga", hour: int = 0, **changes: Any) -> CanonicalEvent:
    start = T0 + timedelta(hours=hour)
    return replace(CanonicalEvent(title, start, start + timedelta(hours=1)), **changes)


def ids(items: Iterable[RemoteEvent]) -> list[str]:
    return [item.id for item in items]


def test_it_implements_the_provider_interface() -> None:
    assert isinstance(MemoryCalendar(), CalendarProvider)


def test_create_is_idempotent_per_key_and_stamps_marker_and_tag() -> None:
    cal = MemoryCalendar("m")
    first = cal.create(event(), "link-1:0", marker="calsync:c:link-1", tag="google")
    again = cal.create(event("Changed meanwhile"), "link-1:0", marker="calsync:c:link-1")
    assert again.id == first.id and again.event == event()  # the first attempt's event
    other = cal.create(event(), "link-1:1", marker="calsync:c:link-1")
    assert other.id != first.id  # a new generation, a new id
    assert (first.marker, first.tag, first.version) == ("calsync:c:link-1", "google", '"1"')
    assert len(cal.events()) == 2


def test_update_and_delete_honour_if_match() -> None:
    cal = MemoryCalendar()
    made = cal.create(event(), "k", marker="m")
    with pytest.raises(PreconditionFailed):
        cal.update(made.id, event("New"), if_match='"999"')
    updated = cal.update(made.id, event("New"), if_match=made.version)
    assert updated.event == event("New") and updated.version != made.version
    with pytest.raises(PreconditionFailed):
        cal.delete(made.id, if_match=made.version)  # stale now
    cal.delete(made.id, if_match=updated.version)
    cal.delete(made.id, if_match=updated.version)  # already gone: done
    cal.delete("never-existed", if_match=None)
    with pytest.raises(NotFound):
        cal.update(made.id, event(), if_match=None)
    assert cal.get(made.id).deleted


def test_full_and_incremental_listings() -> None:
    cal = MemoryCalendar("m")
    a = cal.add(event("A"))
    b = cal.add(event("B"))
    full = cal.list_changes(None)
    assert full.complete and ids(full.changes) == sorted([a.id, b.id])
    cal.edit(a.id, event("A2"))
    cal.remove(b.id)
    page = cal.list_changes(full.next_cursor)
    assert not page.complete
    assert [(r.id, r.deleted) for r in page.changes] == [(a.id, False), (b.id, True)]
    assert page.changes[0].event == event("A2")  # the current state, not the notice's
    assert cal.list_changes(page.next_cursor).changes == ()
    snapshot = page.snapshot(Side.EXTERNAL)
    assert (snapshot.side, snapshot.complete, snapshot.items) == (
        Side.EXTERNAL,
        False,
        page.changes,
    )


def test_an_expired_cursor_asks_for_a_full_listing() -> None:
    cal = MemoryCalendar()
    cursor = cal.list_changes(None).next_cursor
    cal.expire_cursors()
    with pytest.raises(CursorExpired):
        cal.list_changes(cursor)
    with pytest.raises(CursorExpired):
        cal.list_changes("not-a-cursor")


def test_list_window() -> None:
    cal = MemoryCalendar()
    early = cal.add(event("early", hour=0))
    cal.add(event("late", hour=10))
    assert ids(cal.list_window(T0, T0 + timedelta(hours=2))) == [early.id]


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(), ["a", "b", "c"]),
        (Faults(drop_notices=1.0), []),
        (Faults(duplicate_notices=1.0), ["a", "a", "b", "b", "c", "c"]),
        (Faults(delay_notices=1.0), []),
    ],
)
def test_notice_faults(faults: Faults, expected: list[str]) -> None:
    cal = MemoryCalendar("m", faults=faults)
    cursor = cal.list_changes(None).next_cursor
    for title in "abc":
        cal.add(event(title))
    page = cal.list_changes(cursor)
    assert [r.event.title for r in page.changes if r.event] == expected


def test_a_late_notice_comes_with_the_next_page() -> None:
    cal = MemoryCalendar("m", faults=Faults(delay_notices=1.0))
    cursor = cal.list_changes(None).next_cursor
    late = cal.add(event("late"))
    first = cal.list_changes(cursor)
    cal.faults = Faults()
    second = cal.list_changes(first.next_cursor)
    assert (ids(first.changes), ids(second.changes)) == ([], [late.id])


def test_shuffled_notices_are_deterministic_per_seed() -> None:
    def order(seed: int) -> list[str]:
        cal = MemoryCalendar("m", seed=seed, faults=Faults(shuffle_notices=True))
        cursor = cal.list_changes(None).next_cursor
        for i in range(8):
            cal.add(event(f"e{i}"))
        return [r.event.title for r in cal.list_changes(cursor).changes if r.event]

    assert order(3) == order(3)
    assert sorted(order(3)) == [f"e{i}" for i in range(8)]
    assert any(order(seed) != sorted(order(seed)) for seed in range(5))


@pytest.mark.parametrize(
    "failure", [None, RateLimited("slow down", retry_after=3.0), PreconditionFailed("412")]
)
def test_failing_writes(failure: ProviderError | None) -> None:
    cal = MemoryCalendar(faults=Faults(fail_writes=2, failure=failure))
    for _ in range(2):
        with pytest.raises(type(failure) if failure else TransientError):
            cal.create(event(), "k", marker="m")
    assert cal.writes == 0 and cal.events() == {}
    cal.create(event(), "k", marker="m")
    assert cal.writes == 1


def test_stale_etags_make_conditional_writes_fail() -> None:
    cal = MemoryCalendar(faults=Faults(stale_etags=1.0))
    made = cal.create(event(), "k", marker="m")  # unconditional: unaffected
    with pytest.raises(PreconditionFailed):
        cal.update(made.id, event("New"), if_match=made.version)
    assert cal.get(made.id).event == event()


def test_touch_bumps_the_version_only() -> None:
    cal = MemoryCalendar()
    made = cal.add(event())
    touched = cal.touch(made.id)
    assert touched.version != made.version and touched.event == made.event


@pytest.mark.parametrize("after_applying", [False, True])
def test_a_crash_after_some_writes(after_applying: bool) -> None:
    cal = MemoryCalendar(faults=Faults(crash_after_writes=2, crash_after_applying=after_applying))
    cal.create(event("1"), "k1", marker="m")
    cal.create(event("2"), "k2", marker="m")
    with pytest.raises(SimulatedCrash):
        cal.create(event("3"), "k3", marker="m")
    assert len(cal.events()) == (3 if after_applying else 2)
    cal.create(event("4"), "k4", marker="m")  # one crash per setting
    assert not isinstance(SimulatedCrash("x"), TransientError)  # nothing may swallow it


def test_a_read_only_calendar_refuses_calsync_but_not_its_owner() -> None:
    cal = MemoryCalendar(read_only=True)
    assert cal.read_only
    with pytest.raises(PermanentError) as refused:
        cal.create(event(), "k", marker="m")
    assert refused.value.reason is PermanentReason.FORBIDDEN
    owned = cal.add(event())
    with pytest.raises(PermanentError):
        cal.update(owned.id, event("x"), if_match=None)
    with pytest.raises(PermanentError):
        cal.delete(owned.id, if_match=None)
    assert cal.edit(owned.id, event("mine")).event == event("mine")
    assert cal.writes == 0


def test_a_series_takes_its_instances_along_and_instances_need_their_series() -> None:
    cal = MemoryCalendar()
    series = cal.add(event(recurrence=Recurrence(rule="FREQ=WEEKLY")))
    instance = event("moved", recurrence=Recurrence(series_id=series.id, original_start=T0))
    made = cal.create(instance, "k", marker="m")
    cal.remove(series.id)
    assert cal.get(made.id).deleted
    with pytest.raises(NotFound):
        cal.create(instance, "k2", marker="m")


def test_modification_times_come_from_the_clock() -> None:
    clock = ticking_clock(T0, timedelta(minutes=1))
    cal = MemoryCalendar(clock=clock)
    first = cal.add(event())
    second = cal.add(event())
    assert first.modified == T0 + timedelta(minutes=1)
    assert second.modified == T0 + timedelta(minutes=2)


def test_cursors_handed_out_after_an_expiry_work() -> None:
    cal = MemoryCalendar()
    cal.expire_cursors()
    fresh = cal.list_changes(None).next_cursor
    made = cal.add(event())
    assert ids(cal.list_changes(fresh).changes) == [made.id]
