"""An invitation the calendar's owner declined blocks no time; accepting it brings its block."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sync_builders import EXTERNAL, WIX, event, kinds, pair, policy, remote, run, skipped

from sync.actions import Create, Delete
from sync.codec import event_from_dict, event_to_dict
from sync.event import content_hash, same_content
from sync.mapping import blocking_reason, import_event
from sync.policy import Privacy
from sync.reasons import Reason

MEETING = event("Team sync")
DECLINED = replace(MEETING, declined=True)


def test_a_declined_invitation_is_not_copied_to_wix() -> None:
    result = run([], [remote("e1", DECLINED)], [], complete=True)
    assert [k for k in kinds(result) if k[0] == "Create"] == []
    assert skipped(result) == [("external", "e1", "DECLINED_NOT_BLOCKING")]


def test_declining_wins_over_the_options_that_make_events_block() -> None:
    everything = policy(block_free=True, block_all_day=True)
    all_day = replace(DECLINED, all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4))
    assert blocking_reason(all_day, everything) is Reason.DECLINED_NOT_BLOCKING
    assert blocking_reason(MEETING, everything) is None  # tentative or unanswered: busy


def test_declining_an_invitation_removes_its_block() -> None:
    link, block, _ = pair(EXTERNAL, MEETING)
    result = run([block], [remote("e1", DECLINED, "v2")], [link], complete=True)
    assert kinds(result) == [
        ("SaveLink", None, "NO_LONGER_BLOCKING"),
        ("Delete", "wix", "NO_LONGER_BLOCKING"),
    ]
    delete = result.actions[-1]
    assert isinstance(delete, Delete) and (delete.target_id, delete.forget) == ("w1", False)
    tombstone = delete.settle(delete.link, None)
    assert tombstone is not None and tombstone.tombstone and tombstone.base.declined


def test_accepting_later_brings_the_block_back() -> None:
    declined_link, _, _ = pair(EXTERNAL, DECLINED)
    link = replace(declined_link.without_copy(WIX), generation=2)
    result = run([], [remote("e1", MEETING, "v3")], [link])
    (create,) = result.actions
    assert isinstance(create, Create)
    assert (create.side, create.reason) == (WIX, Reason.STARTED_BLOCKING)
    assert not create.event.declined


def test_a_declined_invitation_that_changes_stays_without_a_block() -> None:
    declined_link, _, _ = pair(EXTERNAL, DECLINED)
    link = replace(declined_link.without_copy(WIX), generation=2)
    moved = replace(DECLINED, title="Team sync (moved)")
    result = run([], [remote("e1", moved, "v3")], [link])
    assert [k[0] for k in kinds(result)] == ["SaveLink"]
    assert skipped(result) == [("external", "e1", "DECLINED_NOT_BLOCKING")]


def test_the_answer_alone_is_a_change_and_survives_the_links_table() -> None:
    assert not same_content(MEETING, DECLINED)
    assert content_hash(MEETING) == content_hash(replace(DECLINED, declined=False))
    assert "declined" not in event_to_dict(MEETING)  # older links read as not declined
    assert event_from_dict(event_to_dict(DECLINED)) == DECLINED
    assert event_from_dict(event_to_dict(MEETING)) == MEETING


def test_a_wix_block_never_says_declined() -> None:
    for privacy in Privacy:
        assert not import_event(DECLINED, privacy).declined
