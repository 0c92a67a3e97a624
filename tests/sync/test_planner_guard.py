"""The mass-deletion guard: a side that suddenly lost (most of) its linked events."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sync_builders import EXTERNAL, WIX, event, policy, remote, run

from sync.actions import Delete, Update
from sync.errors import MassDeletionSuspected
from sync.link import Link, link_id_for
from sync.mapping import copy_of
from sync.policy import MassDeleteGuard
from sync.side import Side
from sync.snapshot import RemoteEvent


def linked(count: int) -> tuple[list[Link], list[RemoteEvent], list[RemoteEvent]]:
    links, wix, external = [], [], []
    for i in range(count):
        content = event(f"Session {i}", hour=i)
        copy = copy_of(WIX, content, policy())
        links.append(
            Link(
                link_id=link_id_for("c1", WIX, f"w{i}"),
                origin=WIX,
                base=content,
                wix_id=f"w{i}",
                external_id=f"e{i}",
                wix_version="v1",
                external_version="v1",
                wix_seen=content,
                external_seen=copy,
            )
        )
        wix.append(remote(f"w{i}", content))
        external.append(remote(f"e{i}", copy))
    return links, wix, external


@pytest.mark.parametrize(
    ("links", "vanished", "guard", "trips"),
    [
        (10, 10, MassDeleteGuard(), True),  # everything gone at once
        (10, 6, MassDeleteGuard(), True),  # more than half
        (10, 5, MassDeleteGuard(), False),  # exactly half is allowed
        (9, 9, MassDeleteGuard(), False),  # too few links to judge
        (4, 4, MassDeleteGuard(min_links=3), True),
        (20, 5, MassDeleteGuard(max_share=0.2), True),
        (20, 4, MassDeleteGuard(max_share=0.2), False),
    ],
)
@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("complete", [True, False])
def test_a_side_that_lost_too_much_at_once_is_left_alone(
    links: int, vanished: int, guard: MassDeleteGuard, trips: bool, side: Side, complete: bool
) -> None:
    all_links, wix, external = linked(links)
    listings = {WIX: wix, EXTERNAL: external}
    if complete:  # absent from a full listing
        listings[side] = listings[side][vanished:]
    else:  # explicit deletion notices
        listings = {
            side: [RemoteEvent.gone(item.id) for item in listings[side][:vanished]],
            side.other: [],
        }
    conn = policy(mass_delete=guard)
    result = run(listings[WIX], listings[EXTERNAL], all_links, conn, complete=complete)
    deletes = [a for a in result.actions if isinstance(a, Delete)]
    if trips:
        (error,) = result.errors
        assert isinstance(error, MassDeletionSuspected) and error.flagged
        assert (error.side, error.linked, error.vanished) == (side, links, vanished)
        assert result.writes == ()  # nothing from the side, nothing to it
        guarded = [s for s in result.skipped if s.reason.value == "MASS_DELETE_GUARD"]
        assert len(guarded) == vanished
    else:
        assert result.errors == ()
        assert len(deletes) == vanished
        assert all(d.side is side.other for d in deletes)


def test_an_operator_may_confirm_a_mass_deletion() -> None:
    all_links, wix, _ = linked(10)
    result = run(wix, [], all_links, complete=True, allow_mass_delete=True)
    assert result.errors == ()
    assert len([a for a in result.actions if isinstance(a, Delete)]) == 10


def test_a_change_aimed_at_a_guarded_side_waits_for_it() -> None:
    all_links, wix, external = linked(10)
    first = wix[0].event
    assert first is not None
    edited = remote("w0", replace(first, title="Renamed"), "v2")
    result = run([edited, *wix[1:]], [], all_links, complete=True)  # the external side: empty
    (error,) = result.errors
    assert isinstance(error, MassDeletionSuspected) and error.side is EXTERNAL
    assert result.actions == ()  # nothing written, nothing settled
    guarded = [s.event_id or "" for s in result.skipped if s.reason.value == "MASS_DELETE_GUARD"]
    assert sorted(guarded) == sorted([f"e{i}" for i in range(10)] + ["e0"])  # + the update
    back = run([edited, *wix[1:]], external, all_links, complete=True)
    assert back.errors == ()
    (update,) = back.actions
    assert isinstance(update, Update) and update.event.title == "Renamed"
