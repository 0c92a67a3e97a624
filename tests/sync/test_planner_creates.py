"""New events: copied with a replay-safe key; our own copies never come back as new; series
before their instances; what blocks time; orphans and adoption after a crash."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sync_builders import (
    CONNECTION,
    EXTERNAL,
    WIX,
    event,
    kinds,
    pair,
    policy,
    remote,
    run,
    skipped,
)

from sync.actions import Create, RemoveOrphan, SaveLink, Update
from sync.event import CanonicalEvent, EventStatus, Recurrence, Transparency
from sync.link import Marker, idempotency_key, link_id_for
from sync.mapping import BUSY_TITLE
from sync.policy import Privacy
from sync.side import Side


def ours(link_id: str) -> str:
    return Marker(CONNECTION, link_id).encode()


def test_a_new_session_is_exported_with_a_key_and_our_marker() -> None:
    result = run([remote("w9", event("Yoga"))])
    (create,) = result.actions
    assert isinstance(create, Create)
    link_id = link_id_for(CONNECTION, WIX, "w9")
    assert (create.side, create.reason.value, create.tag) == (EXTERNAL, "CREATED_IN_WIX", None)
    assert create.idempotency_key == idempotency_key(link_id, 0) == f"{link_id}:0"
    assert create.marker == ours(link_id)
    assert create.event == event("Yoga")
    assert (create.link.origin, create.link.wix_id, create.link.external_id) == (WIX, "w9", None)


@pytest.mark.parametrize("provider", ["google", "microsoft", "apple", "caldav"])
@pytest.mark.parametrize(
    ("privacy", "title"), [(Privacy.FULL, "Dentist"), (Privacy.BUSY_ONLY, BUSY_TITLE)]
)
def test_a_new_external_event_becomes_a_tagged_busy_block(
    provider: str, privacy: Privacy, title: str
) -> None:
    conn = replace(policy(privacy=privacy), tag=provider)
    result = run([], [remote("e9", event("Dentist"))], conn=conn)
    (create,) = result.actions
    assert isinstance(create, Create)
    assert (create.side, create.reason.value, create.tag) == (WIX, "CREATED_EXTERNALLY", provider)
    assert (create.event.title, create.event.transparency) == (title, Transparency.BUSY)


def test_a_replayed_plan_creates_under_the_same_key() -> None:
    first = run([remote("w9", event())], [remote("e9", event("Dentist"))])
    second = run([remote("w9", event())], [remote("e9", event("Dentist"))])
    assert [a.idempotency_key for a in first.writes if isinstance(a, Create)] == [
        a.idempotency_key for a in second.writes if isinstance(a, Create)
    ]
    other_connection = run([remote("w9", event())], conn=replace(policy(), owner_id="c2"))
    assert other_connection.writes[0] != first.writes[0]


ALL_DAY = event(all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4))


@pytest.mark.parametrize(
    ("external", "options", "reason"),
    [
        (ALL_DAY, {}, "ALL_DAY_NOT_BLOCKING"),
        (ALL_DAY, {"block_all_day": True}, None),
        (event(transparency=Transparency.FREE), {}, "FREE_NOT_BLOCKING"),
        (event(transparency=Transparency.FREE), {"block_free": True}, None),
        (event(status=EventStatus.CANCELLED), {}, "CANCELLED"),
        (event(), {"import_enabled": False}, "IMPORT_DISABLED"),
    ],
)
def test_which_external_events_are_imported(
    external: CanonicalEvent, options: dict[str, bool], reason: str | None
) -> None:
    result = run([], [remote("e9", external)], conn=policy(**options))
    if reason is None:
        assert kinds(result) == [("Create", "wix", "CREATED_EXTERNALLY")]
    else:
        assert result.actions == ()
        assert skipped(result) == [("external", "e9", reason)]


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"export_enabled": False}, "EXPORT_DISABLED"), ({"read_only": True}, "READ_ONLY")],
)
def test_sessions_are_not_exported_where_they_may_not_be(
    options: dict[str, bool], reason: str
) -> None:
    result = run([remote("w9", event())], conn=policy(**options))
    assert result.actions == ()
    assert skipped(result) == [("wix", "w9", reason)]


@pytest.mark.parametrize("side", list(Side))
def test_our_own_copies_are_never_imported_back(side: Side) -> None:
    """A copy whose link is known to exist elsewhere, or whose source we cannot see (an
    incremental listing), is ours: nothing happens to it."""
    mine = remote("x1", event(), marker=ours(link_id_for(CONNECTION, side.other, "gone")))
    foreign = remote("x2", event(), marker=Marker("another-connection", "l").encode())
    listed = {side: [mine, foreign], side.other: []}
    result = run(listed[WIX], listed[EXTERNAL])
    assert result.actions == ()
    assert sorted(skipped(result)) == [
        (side.value, "x1", "OWN_EVENT"),
        (side.value, "x2", "OWN_EVENT"),
    ]


def test_an_orphaned_copy_is_removed_once_a_full_listing_shows_its_source_is_gone() -> None:
    orphan = remote("e7", event(), marker=ours(link_id_for(CONNECTION, WIX, "w-gone")))
    foreign = remote("e8", event(), marker=Marker("another-connection", "l").encode())
    result = run([], [orphan, foreign], complete=True)
    (remove,) = result.actions
    assert isinstance(remove, RemoveOrphan)
    assert (remove.side, remove.target_id, remove.if_match, remove.reason.value) == (
        EXTERNAL,
        "e7",
        "v1",
        "ORPHANED_COPY",
    )


def test_a_second_copy_of_a_linked_event_is_removed() -> None:
    link, wix, external = pair(WIX)
    twin = remote("e2", external.event, marker=ours(link.link_id))
    result = run([wix], [external, twin], [link])
    assert [(type(a).__name__, getattr(a, "target_id", None)) for a in result.actions] == [
        ("RemoveOrphan", "e2")
    ]


@pytest.mark.parametrize("copy_title", ["Yoga", "Edited meanwhile"])
def test_a_copy_made_before_a_crash_is_adopted_not_made_again(copy_title: str) -> None:
    """The run created the copy and died before it saved the link: the next run links it."""
    link_id = link_id_for(CONNECTION, WIX, "w9")
    made = remote("e-made", event(copy_title), version="v3", marker=ours(link_id))
    result = run([remote("w9", event("Yoga"))], [made])
    assert not any(isinstance(a, Create) for a in result.actions)
    (action,) = result.actions
    assert isinstance(action, SaveLink | Update)
    assert action.reason.value == "ADOPTED_COPY"
    assert (action.link.wix_id, action.link.external_id, action.link.external_version) == (
        "w9",
        "e-made",
        "v3",
    )
    if copy_title == "Yoga":
        assert isinstance(action, SaveLink) and result.conflicts == ()
    else:
        assert isinstance(action, Update) and action.event.title == "Yoga"
        (conflict,) = result.conflicts  # the copy's edit lost, and it says so
        assert (conflict.field, conflict.external_value, conflict.winner) == (
            "title",
            copy_title,
            WIX,
        )


SERIES = event("Weekly", recurrence=Recurrence(rule="FREQ=WEEKLY;BYDAY=MO"))


def instance_of(series_id: str, title: str = "Moved") -> CanonicalEvent:
    return event(
        title, hour=2, recurrence=Recurrence(series_id=series_id, original_start=SERIES.start)
    )


def test_a_series_and_its_exception_are_created_series_first() -> None:
    exception = remote("w-ex", instance_of("w-series"))
    result = run([exception, remote("w-series", SERIES)])
    series_create, exception_create = result.actions
    assert isinstance(series_create, Create) and isinstance(exception_create, Create)
    assert series_create.link.wix_id == "w-series"
    assert exception_create.link.wix_id == "w-ex"
    # the exception names its series' link; the executor fills in the copy's id once made
    assert exception_create.series_link_id == series_create.link_id
    assert exception_create.event.recurrence is not None
    assert exception_create.event.recurrence.original_start == SERIES.start


def test_an_exception_maps_to_an_exception_of_the_linked_series() -> None:
    link, _wix, _external = pair(WIX, SERIES)
    exception = remote("w-ex", instance_of("w1"))
    result = run([exception], [], [link])
    (create,) = result.actions
    assert isinstance(create, Create)
    assert create.event.recurrence is not None
    assert create.event.recurrence.series_id == "e1"  # the series' copy, never the Wix id
    assert create.series_link_id == link.link_id


def test_an_exception_of_a_series_without_a_copy_waits() -> None:
    result = run([remote("w-ex", instance_of("w-unknown"))])
    assert result.actions == ()
    assert skipped(result) == [("wix", "w-ex", "SERIES_NOT_LINKED")]


def test_an_exception_made_on_our_copy_of_a_series_is_a_new_event_not_ours() -> None:
    """Providers copy a series' private properties to its exceptions, marker included."""
    link, wix, external = pair(WIX, SERIES)
    exception = remote("e-ex", instance_of("e1"), marker=external.marker or ours(link.link_id))
    result = run([wix], [exception], [link])
    (create,) = [a for a in result.actions if isinstance(a, Create)]
    assert (create.side, create.reason.value) == (WIX, "CREATED_EXTERNALLY")
    assert create.event.recurrence is not None and create.event.recurrence.series_id == "w1"
