"""One side changed: the other follows, within the directions the connection allows.
Echoes, bogus version bumps and edits of fields that do not flow back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sync_builders import EXTERNAL, WIX, event, kinds, pair, policy, remote, run, skipped

from sync import pair as pair_module
from sync.actions import SaveLink, Update
from sync.event import CanonicalEvent, ExternalCalendarOverrides, Transparency
from sync.mapping import BUSY_TITLE
from sync.policy import ConnectionPolicy, Privacy
from sync.side import Side
from sync.snapshot import RemoteEvent

EDITED = "Yoga at noon"


@pytest.mark.parametrize(
    ("origin", "edited_on", "directions", "expected", "skips"),
    [
        # the origin changed: its copy follows where it may be written
        (WIX, WIX, {}, [("Update", "external", "UPDATED_IN_WIX")], []),
        (
            WIX,
            WIX,
            {"export_enabled": False},
            [("SaveLink", None, "EXPORT_DISABLED")],
            [("external", "e1", "EXPORT_DISABLED")],
        ),
        (
            WIX,
            WIX,
            {"read_only": True},
            [("SaveLink", None, "READ_ONLY")],
            [("external", "e1", "READ_ONLY")],
        ),
        (EXTERNAL, EXTERNAL, {}, [("Update", "wix", "UPDATED_EXTERNALLY")], []),
        (
            EXTERNAL,
            EXTERNAL,
            {"import_enabled": False},
            [("SaveLink", None, "IMPORT_DISABLED")],
            [("wix", "w1", "IMPORT_DISABLED")],
        ),
        # the copy changed: it flows back while the origin may be written ...
        (WIX, EXTERNAL, {}, [("Update", "wix", "UPDATED_EXTERNALLY")], []),
        (EXTERNAL, WIX, {}, [("Update", "external", "UPDATED_IN_WIX")], []),
        # ... otherwise the copy is a mirror, and its edit is reverted
        (WIX, EXTERNAL, {"import_enabled": False}, [("Update", "external", "REVERTED_MIRROR")], []),
        (EXTERNAL, WIX, {"export_enabled": False}, [("Update", "wix", "REVERTED_MIRROR")], []),
        (EXTERNAL, WIX, {"read_only": True}, [("Update", "wix", "REVERTED_MIRROR")], []),
        (
            WIX,
            EXTERNAL,
            {"import_enabled": False, "export_enabled": False},
            [("SaveLink", None, "EXPORT_DISABLED")],
            [("external", "e1", "EXPORT_DISABLED")],
        ),
    ],
)
def test_a_change_on_one_side(
    origin: Side,
    edited_on: Side,
    directions: dict[str, bool],
    expected: list[tuple[str, str | None, str]],
    skips: list[tuple[str, str, str]],
) -> None:
    conn = policy(**directions)
    link, wix, external = pair(origin, conn=conn)
    items = {WIX: wix, EXTERNAL: external}
    before = items[edited_on].event
    assert before is not None
    items[edited_on] = remote(items[edited_on].id, replace(before, title=EDITED), version="v2")
    result = run([items[WIX]], [items[EXTERNAL]], [link], conn, complete=True)
    assert kinds(result) == expected
    assert skipped(result) == skips
    assert result.conflicts == ()
    for action in result.actions:
        if isinstance(action, Update):
            wanted = EDITED if action.reason.value.startswith("UPDATED") else "Yoga"
            assert action.event.title == wanted
            assert action.if_match == items[action.side].version  # never blind
        if isinstance(action, SaveLink):
            # the change was seen: its version is recorded and the merge result kept
            assert action.link.version_on(edited_on) == "v2"
            assert action.link.base.title == EDITED or edited_on is not origin


def test_an_edit_is_settled_only_once_the_other_side_was_seen() -> None:
    """A change notice for one side says nothing about the other, which may be deleted: an
    edit that needs no write stays pending until a listing shows both events."""
    conn = policy(export_enabled=False)
    link, wix, external = pair(WIX, conn=conn)
    assert wix.event is not None
    edited = remote("w1", replace(wix.event, title=EDITED), version="v2")
    pending = run([edited], [], [link], conn)
    assert pending.actions == ()
    assert skipped(pending) == [("external", "e1", "EXPORT_DISABLED")]
    deleted_meanwhile = run([edited], [RemoteEvent.gone("e1")], [link])
    assert kinds(deleted_meanwhile) == [("Create", "external", "RECREATED_AFTER_DELETE")]
    settled = run([edited], [external], [link], conn, complete=True)
    assert kinds(settled) == [("SaveLink", None, "EXPORT_DISABLED")]


def test_an_echo_of_our_own_write_does_nothing() -> None:
    link, wix, external = pair(WIX)
    result = run([wix], [external], [link])  # listed as changes, with the versions we recorded
    assert result.actions == ()
    assert skipped(result) == [("wix", "w1", "ECHO"), ("external", "e1", "ECHO")]


def test_echoes_of_the_copies_are_reported_without_planning_their_pairs_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a large first sync, the next incremental listing of the copies' side holds an
    echo of every copy: each costs a look at its link, not a merge."""
    links, copies = [], []
    for n in range(3):
        link, _, external = pair(WIX, event(f"session {n}", hour=n))
        links.append(replace(link, link_id=f"l{n}", wix_id=f"w{n}", external_id=f"e{n}"))
        copies.append(replace(external, id=f"e{n}"))
    merged: list[str] = []
    real = pair_module._merge_pair

    def counted(draft: Any, link: Any, *rest: Any) -> Any:
        merged.append(link.link_id)
        return real(draft, link, *rest)

    monkeypatch.setattr(pair_module, "_merge_pair", counted)
    result = run([], copies, links)
    assert result.actions == () and merged == []
    assert skipped(result) == [("external", f"e{n}", "ECHO") for n in range(3)]
    origin_echo = run([remote("w0", links[0].base, version=links[0].wix_version)], [], links)
    assert origin_echo.actions == () and merged == ["l0"]  # may show what the server stored


@pytest.mark.parametrize(
    "rendered",
    [
        pytest.param(lambda e: e, id="same content"),
        pytest.param(lambda e: replace(e, title=e.title + "  "), id="re-rendered title"),
        pytest.param(lambda e: replace(e, description=e.description + "\r\n"), id="crlf"),
    ],
)
def test_a_version_bump_without_a_content_change_is_not_an_edit(
    rendered: Callable[[CanonicalEvent], CanonicalEvent],
) -> None:
    link, wix, external = pair(WIX)
    assert external.event is not None
    bumped = remote("e1", rendered(external.event), version="v9")
    result = run([wix], [bumped], [link])
    assert result.writes == ()
    (save,) = result.actions
    assert isinstance(save, SaveLink) and save.reason.value == "ECHO"
    assert save.link.external_version == "v9"  # known from now on by its version


def test_unchanged_events_of_a_complete_listing_are_silent() -> None:
    link, wix, external = pair(WIX)
    result = run([wix], [external], [link], complete=True)
    assert (result.actions, result.skipped, result.conflicts) == ((), (), ())


def test_an_event_absent_from_an_incremental_listing_is_unchanged() -> None:
    link, wix, _ = pair(WIX)
    assert wix.event is not None
    changed = remote("w1", replace(wix.event, location="Park"), version="v2")
    result = run([changed], [], [link])
    (update,) = result.writes
    assert isinstance(update, Update)
    assert (update.side, update.target_id, update.if_match) == (EXTERNAL, "e1", "v1")
    assert update.event.location == "Park"


@pytest.mark.parametrize(
    ("origin", "conn", "overrides", "edit"),
    [
        pytest.param(WIX, policy(privacy=Privacy.BUSY_ONLY), None, {"title": "Lunch"}, id="busy"),
        pytest.param(
            WIX, policy(privacy=Privacy.BUSY_ONLY), None, {"location": "Home"}, id="busy-loc"
        ),
        pytest.param(
            WIX, policy(), ExternalCalendarOverrides(title="Class"), {"title": "X"}, id="override"
        ),
        pytest.param(
            EXTERNAL, policy(privacy=Privacy.BUSY_ONLY), None, {"title": "Mine"}, id="block-title"
        ),
        pytest.param(
            EXTERNAL, policy(), None, {"transparency": Transparency.FREE}, id="block-transparency"
        ),
    ],
)
def test_an_edit_of_a_derived_field_on_the_copy_is_reverted(
    origin: Side,
    conn: ConnectionPolicy,
    overrides: ExternalCalendarOverrides | None,
    edit: dict[str, Any],
) -> None:
    link, wix, external = pair(origin, conn=conn, overrides=overrides)
    copy = external if origin is WIX else wix
    assert copy.event is not None
    edited = remote(copy.id, replace(copy.event, **edit), version="v2")
    listed: dict[Side, list[RemoteEvent]] = {origin: [], origin.other: [edited]}
    result = run(listed[WIX], listed[EXTERNAL], [link], conn)
    (revert,) = result.actions
    assert isinstance(revert, Update)
    assert (revert.side, revert.reason.value) == (origin.other, "REVERTED_DERIVED_FIELD")
    assert revert.event == copy.event  # back to what the mapping makes of the origin
    assert revert.link.version_on(origin.other) == "v2"


def test_a_session_override_change_updates_the_copy() -> None:
    link, wix, _ = pair(WIX)
    renamed = replace(wix, version="v2", overrides=ExternalCalendarOverrides(title="Class"))
    result = run([renamed], [], [link])
    (update,) = result.actions
    assert isinstance(update, Update)
    assert (update.side, update.reason.value, update.event.title) == (
        EXTERNAL,
        "UPDATED_IN_WIX",
        "Class",
    )
    assert update.link.wix_overrides == ExternalCalendarOverrides(title="Class")


def test_a_privacy_change_rewrites_copies_on_the_next_full_listing() -> None:
    link, wix, external = pair(WIX)
    result = run([wix], [external], [link], policy(privacy=Privacy.BUSY_ONLY), complete=True)
    (update,) = result.actions
    assert isinstance(update, Update)
    assert (update.reason.value, update.event.title, update.event.location) == (
        "RESYNC",
        BUSY_TITLE,
        "",
    )


def test_an_interrupted_merge_is_finished_from_the_base() -> None:
    """A run merged an external edit and died before writing Wix: the link's base remembers
    the result, so the next run writes it although neither side changes any more."""
    link, wix, external = pair(WIX)
    moved = event(hour=3)
    link = replace(link, base=moved, external_seen=moved, external_version="v2")
    external = remote("e1", moved, version="v2")
    result = run([wix], [external], [link], complete=True)
    (update,) = result.actions
    assert isinstance(update, Update)
    assert (update.side, update.reason.value, update.event.start) == (WIX, "RESYNC", moved.start)


def test_an_interrupted_merge_is_finished_by_an_incremental_run_that_lists_nothing() -> None:
    link, _, _ = pair(WIX)
    moved = event(hour=3)
    link = replace(link, base=moved, external_seen=moved, external_version="v2")
    (update,) = run([], [], [link]).actions
    assert isinstance(update, Update)
    assert (update.side, update.event.start) == (WIX, moved.start)


def test_an_incremental_run_leaves_pairs_it_does_not_list_alone() -> None:
    settled = [
        replace(
            pair(WIX, event(f"session {n}", hour=n))[0],
            link_id=f"l{n}",
            wix_id=f"w{n + 10}",
            external_id=f"e{n + 10}",
        )
        for n in range(3)
    ]
    link, wix, _ = pair(WIX)
    edited = replace(wix, version="v2", event=event(title="Renamed"))
    result = run([edited], [], [*settled, link])
    assert kinds(result) == [("Update", "external", "UPDATED_IN_WIX")]
    assert result.skipped == ()


def test_plans_are_deterministic() -> None:
    link, _, external = pair(WIX)
    edited = remote("w1", event(title="Again"), version="v2")
    new = [remote(f"w{i}", event(f"new {i}"), marker=None) for i in range(5, 1, -1)]
    first = run([*new, edited], [external], [link])
    second = run([edited, *reversed(new)], [external], [link])
    assert first == second
