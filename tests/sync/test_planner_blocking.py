"""Imported events block time only while they qualify; their block goes and comes back."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sync_builders import EXTERNAL, WIX, event, kinds, pair, policy, remote, run, skipped

from sync.actions import Create, Delete, SaveLink
from sync.event import CanonicalEvent, Transparency
from sync.link import Link, idempotency_key
from sync.snapshot import RemoteEvent

FREE = event("Dentist", transparency=Transparency.FREE)
CHECKPOINT = ("SaveLink", None, "NO_LONGER_BLOCKING")  # why the block goes, saved first
ALL_DAY = event("Dentist", all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4))


@pytest.mark.parametrize(
    ("changed", "options", "expected"),
    [
        (FREE, {}, [CHECKPOINT, ("Delete", "wix", "NO_LONGER_BLOCKING")]),
        (ALL_DAY, {}, [CHECKPOINT, ("Delete", "wix", "NO_LONGER_BLOCKING")]),
        (FREE, {"block_free": True}, [("SaveLink", None, "IN_SYNC")]),  # a block is busy anyway
        (ALL_DAY, {"block_all_day": True}, [("Update", "wix", "UPDATED_EXTERNALLY")]),
    ],
)
def test_an_event_that_stops_blocking_loses_its_block(
    changed: CanonicalEvent, options: dict[str, bool], expected: list[tuple[str, str, str]]
) -> None:
    conn = policy(**options)
    link, _, _ = pair(EXTERNAL, event("Dentist"), conn)
    _, block, _ = pair(EXTERNAL, event("Dentist"), conn)
    result = run([block], [remote("e1", changed, "v2")], [link], conn, complete=True)
    assert kinds(result) == expected
    action = result.actions[-1]
    if isinstance(action, Delete):
        assert (action.target_id, action.forget) == ("w1", False)
        tombstone = action.settle(action.link, None)
        assert tombstone is not None and tombstone.tombstone and tombstone.wix_id is None
        assert tombstone.external_version == "v2" and tombstone.base == changed


def tombstone(content: CanonicalEvent, generation: int = 2) -> Link:
    link, _, _ = pair(EXTERNAL, content)
    return replace(link.without_copy(WIX), generation=generation)


def test_a_block_comes_back_under_the_next_generation_when_the_event_blocks_again() -> None:
    link = tombstone(FREE)
    busy = remote("e1", replace(FREE, transparency=Transparency.BUSY), "v3")
    result = run([], [busy], [link])
    (create,) = result.actions
    assert isinstance(create, Create)
    assert (create.side, create.reason.value) == (WIX, "STARTED_BLOCKING")
    assert create.idempotency_key == idempotency_key(create.link_id, 3)
    assert not create.link.tombstone and create.link.generation == 3


def test_options_that_now_allow_it_bring_the_block_back() -> None:
    link = tombstone(ALL_DAY)
    listed = remote("e1", ALL_DAY)
    result = run([], [listed], [link], policy(block_all_day=True), complete=True)
    assert kinds(result) == [("Create", "wix", "STARTED_BLOCKING")]


def test_a_non_blocking_event_that_changes_keeps_its_tombstone() -> None:
    link = tombstone(FREE)
    renamed = remote("e1", replace(FREE, title="Dentist (moved)"), "v3")
    result = run([], [renamed], [link])
    (save,) = result.actions
    assert isinstance(save, SaveLink) and save.link.tombstone
    assert save.link.base.title == "Dentist (moved)" and save.link.external_version == "v3"
    assert skipped(result) == [("external", "e1", "FREE_NOT_BLOCKING")]


def test_a_tombstone_is_forgotten_when_its_event_is_deleted() -> None:
    link = tombstone(FREE)
    result = run([], [RemoteEvent.gone("e1")], [link])
    assert kinds(result) == [("ForgetLink", None, "DELETED_ON_BOTH")]


def test_a_block_removed_on_an_unseen_copy_keeps_the_origin_edit_pending() -> None:
    """Only the external event's notice arrived (it became all-day); the block was edited
    too, unseen. The plan removes the block but settles nothing it has not seen: the next
    full listing still meets both edits, as a conflict."""
    link, block, _ = pair(EXTERNAL, event("Dentist"))
    first = run([], [remote("e1", ALL_DAY, "v2")], [link])
    checkpoint, delete = first.actions
    assert isinstance(checkpoint, SaveLink) and isinstance(delete, Delete)
    assert checkpoint.link.external_version == "v1" and checkpoint.link.base == ALL_DAY
    assert block.event is not None
    moved_block = remote("w1", block.event.with_when(event(hour=5).when), "v2")
    saved = checkpoint.link  # the delete failed (412: the block had changed)
    second = run([moved_block], [remote("e1", ALL_DAY, "v2")], [saved], complete=True)
    (conflict,) = second.conflicts
    assert (conflict.field, conflict.winner) == ("when", EXTERNAL)  # origin_wins
    assert (conflict.wix_value, conflict.external_value) == (event(hour=5).when, ALL_DAY.when)
    assert kinds(second)[-1] == ("Delete", "wix", "NO_LONGER_BLOCKING")
