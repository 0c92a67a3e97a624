"""An event a provider lists but cannot read: its copy stays as it was, the change is reported,
and the rest of the calendar is planned as usual."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sync_builders import EXTERNAL, WIX, event, kinds, pair, policy, remote, run, skipped

from sync.side import Side
from sync.snapshot import RemoteEvent


@pytest.mark.parametrize("complete", [False, True])
@pytest.mark.parametrize("origin", [WIX, EXTERNAL])
@pytest.mark.parametrize("broken", [WIX, EXTERNAL])
def test_an_unreadable_event_keeps_its_copy(origin: Side, broken: Side, complete: bool) -> None:
    link, wix, external = pair(origin)
    listed = {WIX: wix, EXTERNAL: external}
    unreadable = RemoteEvent.unread(listed[broken].id, "missing field 'start'", "v2")
    items = {broken: [unreadable], broken.other: [listed[broken.other]] if complete else []}

    result = run(items[WIX], items[EXTERNAL], [link], complete=complete)

    assert kinds(result) == []
    assert skipped(result) == [(broken.value, unreadable.id, "UNREADABLE")]
    assert result.skipped[0].link_id == link.link_id


def test_the_rest_of_the_calendar_is_planned_as_usual() -> None:
    link, _, external = pair(EXTERNAL)
    unreadable = RemoteEvent.unread(external.id, "not iCalendar")
    arrival = remote("e2", event("Dentist", hour=3))

    result = run([], [unreadable, arrival], [link], policy(), complete=False)

    assert kinds(result) == [("Create", "wix", "CREATED_EXTERNALLY")]
    assert ("external", "e1", "UNREADABLE") in skipped(result)


def test_an_unlinked_unreadable_event_is_reported_and_not_copied() -> None:
    result = run([], [RemoteEvent.unread("e9", "no VEVENT")], [], complete=True)

    assert kinds(result) == []
    assert skipped(result) == [("external", "e9", "UNREADABLE")]


def test_unreadable_events_do_not_trip_the_mass_deletion_guard() -> None:
    links, wixes, externals = [], [], []
    for n in range(20):
        link, wix, _ = pair(EXTERNAL, event(f"Event {n}", hour=n))
        links.append(replace(link, link_id=f"l{n}", wix_id=f"w{n}", external_id=f"e{n}"))
        wixes.append(replace(wix, id=f"w{n}"))
        externals.append(RemoteEvent.unread(f"e{n}", "damaged"))

    result = run(wixes, externals, links, complete=True)

    assert not result.errors
    assert kinds(result) == []
    assert {reason for *_, reason in skipped(result)} == {"UNREADABLE"}


def test_a_deletion_after_being_unreadable_still_deletes_the_copy() -> None:
    link, _, external = pair(EXTERNAL)

    result = run([], [RemoteEvent.unread(external.id, "damaged"), RemoteEvent.gone(external.id)],
                 [link])  # fmt: skip

    assert kinds(result) == [("Delete", "wix", "DELETED_EXTERNALLY")]


@pytest.mark.parametrize("edit", ["title", "delete"])
def test_the_other_side_waits_until_the_event_reads_again(edit: str) -> None:
    link, wix, external = pair(WIX)
    assert wix.event is not None
    changed = (RemoteEvent.gone(wix.id) if edit == "delete"
               else remote(wix.id, replace(wix.event, title="Moved"), "v2"))  # fmt: skip

    result = run([changed], [RemoteEvent.unread(external.id, "damaged")], [link])

    assert kinds(result) == []
    assert skipped(result) == [("external", "e1", "UNREADABLE")]
