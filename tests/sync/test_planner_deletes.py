"""Deletions: each combination of where it happened and what the other side did."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sync_builders import EXTERNAL, WIX, kinds, pair, policy, remote, run, skipped

from sync.actions import Create, Delete, ForgetLink
from sync.link import idempotency_key
from sync.merge import DELETED
from sync.side import Side
from sync.snapshot import RemoteEvent

SIDES = list(Side)


@pytest.mark.parametrize(
    ("origin", "deleted_on", "other_changed", "expected", "conflict_winner"),
    [
        # deleted on one side, unchanged on the other: deleted on the other
        (WIX, WIX, False, [("Delete", "external", "DELETED_IN_WIX")], None),
        (WIX, EXTERNAL, False, [("Delete", "wix", "DELETED_EXTERNALLY")], None),
        (EXTERNAL, EXTERNAL, False, [("Delete", "wix", "DELETED_EXTERNALLY")], None),
        (EXTERNAL, WIX, False, [("Delete", "external", "DELETED_IN_WIX")], None),
        # the origin deleted what the copy changed: the deletion wins
        (WIX, WIX, True, [("Delete", "external", "DELETE_WINS")], WIX),
        (EXTERNAL, EXTERNAL, True, [("Delete", "wix", "DELETE_WINS")], EXTERNAL),
        # the copy deleted what the origin changed: the change is written again
        (WIX, EXTERNAL, True, [("Create", "external", "RECREATED_AFTER_DELETE")], WIX),
        (EXTERNAL, WIX, True, [("Create", "wix", "RECREATED_AFTER_DELETE")], EXTERNAL),
    ],
)
@pytest.mark.parametrize("complete", [False, True])
def test_deleted_on_one_side(
    origin: Side,
    deleted_on: Side,
    other_changed: bool,
    expected: list[tuple[str, str, str]],
    conflict_winner: Side | None,
    complete: bool,
) -> None:
    link, wix, external = pair(origin)
    items = {WIX: wix, EXTERNAL: external}
    survivor = items[deleted_on.other]
    assert survivor.event is not None
    if other_changed:
        survivor = remote(survivor.id, replace(survivor.event, title="Changed"), "v2")
    listed: dict[Side, list[RemoteEvent]] = {
        deleted_on: [] if complete else [RemoteEvent.gone(items[deleted_on].id)],
        deleted_on.other: [survivor] if complete or other_changed else [],
    }
    result = run(listed[WIX], listed[EXTERNAL], [link], complete=complete)
    assert kinds(result) == expected

    (action,) = result.actions
    if isinstance(action, Delete):
        assert (action.target_id, action.if_match, action.forget) == (
            survivor.id,
            survivor.version,
            True,
        )
    else:
        assert isinstance(action, Create)
        assert action.event.title == "Changed"
        assert action.link.generation == link.generation + 1  # a fresh id, never the deleted one
        assert action.idempotency_key == idempotency_key(link.link_id, 1)
        assert action.link.id_on(deleted_on) is None and not action.link.tombstone
    if conflict_winner is None:
        assert result.conflicts == ()
    else:
        (conflict,) = result.conflicts
        assert (conflict.field, conflict.winner, conflict.link_id) == (
            DELETED,
            conflict_winner,
            link.link_id,
        )
        assert conflict.value_on(deleted_on) is None
        assert conflict.value_on(deleted_on.other) == survivor.event


@pytest.mark.parametrize("origin", SIDES)
def test_deleted_on_both_sides_forgets_the_link(origin: Side) -> None:
    link, _, _ = pair(origin)
    result = run([RemoteEvent.gone("w1")], [RemoteEvent.gone("e1")], [link])
    assert kinds(result) == [("ForgetLink", None, "DELETED_ON_BOTH")]
    assert isinstance(result.actions[0], ForgetLink)


@pytest.mark.parametrize(
    ("origin", "deleted_on", "directions", "expected", "skips"),
    [
        # a deleted copy whose origin may not be written was a mirror: it comes back
        (WIX, EXTERNAL, {"import_enabled": False}, [("Create", "external", "RESTORED_MIRROR")], []),
        (EXTERNAL, WIX, {"export_enabled": False}, [("Create", "wix", "RESTORED_MIRROR")], []),
        (EXTERNAL, WIX, {"read_only": True}, [("Create", "wix", "RESTORED_MIRROR")], []),
        # a deletion that may not travel is left alone (and reported)
        (WIX, WIX, {"export_enabled": False}, [], [("external", "e1", "EXPORT_DISABLED")]),
        (WIX, WIX, {"read_only": True}, [], [("external", "e1", "READ_ONLY")]),
        (EXTERNAL, EXTERNAL, {"import_enabled": False}, [], [("wix", "w1", "IMPORT_DISABLED")]),
        (
            WIX,
            EXTERNAL,
            {"import_enabled": False, "export_enabled": False},
            [],
            [("wix", "w1", "IMPORT_DISABLED")],
        ),
    ],
)
def test_deletions_within_the_allowed_directions(
    origin: Side,
    deleted_on: Side,
    directions: dict[str, bool],
    expected: list[tuple[str, str, str]],
    skips: list[tuple[str, str, str]],
) -> None:
    conn = policy(**directions)
    link, wix, external = pair(origin, conn=conn)
    items = {WIX: wix, EXTERNAL: external}
    listed = {deleted_on: [RemoteEvent.gone(items[deleted_on].id)], deleted_on.other: []}
    result = run(listed[WIX], listed[EXTERNAL], [link], conn)
    assert kinds(result) == expected
    assert skipped(result) == skips
    assert result.conflicts == ()


def test_a_deletion_notice_for_an_unknown_event_is_noted_and_ignored() -> None:
    result = run([RemoteEvent.gone("never-seen")])
    assert result.actions == ()
    assert skipped(result) == [("wix", "never-seen", "UNKNOWN_DELETED")]


def test_an_edit_after_the_copy_was_deleted_comes_back_under_the_next_generation_each_time() -> (
    None
):
    link, wix, _ = pair(WIX)
    link = replace(link, generation=4)
    assert wix.event is not None
    edited = remote("w1", replace(wix.event, title="Again"), "v2")
    result = run([edited], [RemoteEvent.gone("e1")], [link])
    (create,) = result.actions
    assert isinstance(create, Create)
    assert create.idempotency_key == idempotency_key(link.link_id, 5)
    again = run([edited], [RemoteEvent.gone("e1")], [link])
    assert again.actions == result.actions  # a retried plan makes the same key: no second copy
