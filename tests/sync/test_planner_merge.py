"""Both sides changed: field-level three-way merge, and each conflict policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sync_builders import EXTERNAL, T0, WIX, event, kinds, pair, policy, remote, run

from sync.actions import PlanResult, Update
from sync.event import CanonicalEvent, Field, value_of
from sync.merge import Edits, merge
from sync.policy import ConflictPolicy, Privacy
from sync.side import Side


def both_edited(
    origin: Side,
    wix_changes: dict[str, Any],
    external_changes: dict[str, Any],
    conn_policy: ConflictPolicy = ConflictPolicy.ORIGIN_WINS,
    wix_modified: datetime | None = None,
    external_modified: datetime | None = None,
    skew: timedelta = timedelta(seconds=5),
) -> tuple[dict[Side, CanonicalEvent], PlanResult]:
    conn = policy(conflict_policy=conn_policy, clock_skew=skew)
    link, wix, external = pair(origin, conn=conn)
    assert wix.event is not None and external.event is not None
    wix2 = remote("w1", replace(wix.event, **wix_changes), "v2", modified=wix_modified)
    ext2 = remote(
        "e1", replace(external.event, **external_changes), "v2", modified=external_modified
    )
    result = run([wix2], [ext2], [link], conn)
    final = {
        WIX: replace(wix.event, **wix_changes),
        EXTERNAL: replace(external.event, **external_changes),
    }
    for action in result.actions:
        if isinstance(action, Update):
            final[action.side] = action.event
    return final, result


@pytest.mark.parametrize("origin", list(Side))
def test_different_fields_changed_on_each_side_are_both_kept(origin: Side) -> None:
    final, result = both_edited(origin, {"title": "Pilates"}, {"location": "Park"})
    for side in Side:
        assert (final[side].title, final[side].location) == ("Pilates", "Park")
    assert result.conflicts == ()
    assert sorted(kinds(result)) == [
        ("Update", "external", "MERGED"),
        ("Update", "wix", "MERGED"),
    ]


@pytest.mark.parametrize("origin", list(Side))
def test_the_same_change_on_both_sides_is_no_conflict(origin: Side) -> None:
    final, result = both_edited(origin, {"title": "Pilates"}, {"title": "Pilates"})
    assert result.conflicts == ()
    assert result.writes == ()
    assert final[WIX].title == final[EXTERNAL].title == "Pilates"


LATER = T0 + timedelta(minutes=10)
SKEW = timedelta(seconds=5)


@pytest.mark.parametrize(
    ("origin", "conn_policy", "wix_modified", "external_modified", "skew", "winner"),
    [
        (WIX, ConflictPolicy.ORIGIN_WINS, None, None, timedelta(0), WIX),
        (EXTERNAL, ConflictPolicy.ORIGIN_WINS, None, None, timedelta(0), EXTERNAL),
        (WIX, ConflictPolicy.WIX_WINS, None, None, timedelta(0), WIX),
        (EXTERNAL, ConflictPolicy.WIX_WINS, None, None, timedelta(0), WIX),
        (WIX, ConflictPolicy.EXTERNAL_WINS, None, None, timedelta(0), EXTERNAL),
        (EXTERNAL, ConflictPolicy.EXTERNAL_WINS, None, None, timedelta(0), EXTERNAL),
        # latest_wins: the later modification, unless within the clock skew
        (WIX, ConflictPolicy.LATEST_WINS, T0, LATER, timedelta(seconds=5), EXTERNAL),
        (EXTERNAL, ConflictPolicy.LATEST_WINS, LATER, T0, timedelta(seconds=5), WIX),
        (WIX, ConflictPolicy.LATEST_WINS, T0, T0 + timedelta(seconds=3), SKEW, WIX),
        (EXTERNAL, ConflictPolicy.LATEST_WINS, T0 + timedelta(seconds=3), T0, SKEW, EXTERNAL),
        (WIX, ConflictPolicy.LATEST_WINS, T0, LATER, timedelta(hours=1), WIX),
        (WIX, ConflictPolicy.LATEST_WINS, None, LATER, timedelta(0), WIX),  # unknown: origin
    ],
)
def test_a_field_changed_on_both_sides_is_decided_by_the_policy(
    origin: Side,
    conn_policy: ConflictPolicy,
    wix_modified: datetime | None,
    external_modified: datetime | None,
    skew: timedelta,
    winner: Side,
) -> None:
    final, result = both_edited(
        origin,
        {"title": "Wix title", "description": "Wix only"},
        {"title": "External title", "location": "External only"},
        conn_policy,
        wix_modified,
        external_modified,
        skew,
    )
    expected_title = "Wix title" if winner is WIX else "External title"
    for side in Side:
        assert final[side].title == expected_title
        # the fields only one side changed are merged, whoever wins the conflict
        assert (final[side].description, final[side].location) == ("Wix only", "External only")
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.wix_value, conflict.external_value, conflict.base_value) == (
        "title",
        "Wix title",
        "External title",
        "Yoga",
    )
    assert (conflict.policy, conflict.winner) == (conn_policy, winner)
    assert conflict.reason.value == f"CONFLICT_{winner.value.upper()}_WINS"
    loser = winner.other
    (to_loser,) = [a for a in result.writes if a.side is loser]
    assert to_loser.reason.value == f"CONFLICT_{winner.value.upper()}_WINS"


def test_start_end_and_all_day_are_merged_together() -> None:
    """Moving an event on one side and resizing it on the other is one conflict, not a
    mixture that could end before it starts."""
    moved: dict[str, Any] = {"start": T0 + timedelta(hours=5), "end": T0 + timedelta(hours=6)}
    stretched = {"end": T0 + timedelta(hours=3)}
    final, result = both_edited(WIX, moved, stretched)
    (conflict,) = result.conflicts
    assert conflict.field == "when"
    assert final[WIX].when == final[EXTERNAL].when == event(**moved).when


def test_a_copy_edit_that_does_not_flow_back_is_no_conflict() -> None:
    """Under busy_only the copy's title is derived: the origin's title edit simply wins."""
    conn = policy(privacy=Privacy.BUSY_ONLY)
    link, wix, external = pair(WIX, conn=conn)
    assert wix.event is not None and external.event is not None
    wix2 = remote("w1", replace(wix.event, title="New"), "v2")
    ext2 = remote("e1", replace(external.event, title="Lunch"), "v2")
    result = run([wix2], [ext2], [link], conn)
    assert result.conflicts == ()
    (update,) = result.writes
    assert isinstance(update, Update)
    assert (update.side, update.event.title) == (EXTERNAL, "Busy")


def test_merge_takes_each_field_from_the_side_that_changed_it() -> None:
    base = event()
    ours = replace(base, title="A")
    theirs = replace(base, location="B", title="C")
    result = merge(
        "l1",
        WIX,
        base,
        Edits(ours, frozenset({Field.TITLE})),
        Edits(theirs, frozenset({Field.LOCATION})),  # its title edit does not count
        policy(),
    )
    assert (result.event.title, result.event.location) == ("A", "B")
    assert value_of(result.event, Field.WHEN) == base.when
    assert result.conflicts == ()


def test_a_merge_result_never_written_still_meets_a_later_origin_edit_as_a_conflict() -> None:
    """A run merged an external move but died before writing Wix. Meanwhile Wix moved the
    event elsewhere: that is a conflict between the two moves, decided and recorded."""
    link, _, _ = pair(WIX)
    external_move = event(hour=5)
    link = replace(link, base=external_move, external_seen=external_move)
    wix_move = remote("w1", event(hour=7), "v2")
    result = run([wix_move], [], [link])
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.winner) == ("when", WIX)  # origin_wins
    assert (conflict.wix_value, conflict.external_value) == (event(hour=7).when, external_move.when)
    (update,) = result.writes
    assert isinstance(update, Update)
    assert (update.side, update.event.start) == (EXTERNAL, event(hour=7).start)
