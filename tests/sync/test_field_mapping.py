"""Field mapping both ways: overrides, privacy, what blocks time, which fields flow back."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sync_builders import event, policy

from sync.event import (
    CanonicalEvent,
    ExternalCalendarOverrides,
    Field,
    Recurrence,
    Transparency,
    value_of,
)
from sync.mapping import (
    BUSY_TITLE,
    blocking_reason,
    copy_of,
    effective_overrides,
    export_event,
    import_event,
    reversible_fields,
)
from sync.policy import Privacy
from sync.reasons import Reason
from sync.side import Side

Ov = ExternalCalendarOverrides
SESSION = event("Yoga", description="Bring a mat", location="Studio 1")


@pytest.mark.parametrize(
    ("session", "schedule", "expected"),
    [
        (None, None, None),
        (Ov(title="S"), None, Ov(title="S")),
        (None, Ov(title="Sch", description="D"), Ov(title="Sch", description="D")),
        (Ov(title="S"), Ov(title="Sch", description="D"), Ov(title="S", description="D")),
        (Ov(title="  "), Ov(title="Sch"), Ov(title="Sch")),  # blank counts as unset
        (Ov(title="", description=""), None, None),
    ],
)
def test_the_sessions_override_else_the_schedules(
    session: Ov | None, schedule: Ov | None, expected: Ov | None
) -> None:
    assert effective_overrides(session, schedule) == expected


@pytest.mark.parametrize(
    ("overrides", "privacy", "title", "description", "location"),
    [
        (None, Privacy.FULL, "Yoga", "Bring a mat", "Studio 1"),
        (Ov(title="Class"), Privacy.FULL, "Class", "Bring a mat", "Studio 1"),
        (Ov(description="Details"), Privacy.FULL, "Yoga", "Details", "Studio 1"),
        (Ov(title="Class", description="Details"), Privacy.FULL, "Class", "Details", "Studio 1"),
        (None, Privacy.BUSY_ONLY, BUSY_TITLE, "", ""),
        (Ov(title="Class"), Privacy.BUSY_ONLY, BUSY_TITLE, "", ""),
    ],
)
def test_export_of_a_session(
    overrides: Ov | None, privacy: Privacy, title: str, description: str, location: str
) -> None:
    copy = export_event(SESSION, overrides, privacy)
    assert (copy.title, copy.description, copy.location) == (title, description, location)
    assert copy.when == SESSION.when
    assert (copy.status, copy.transparency) == (SESSION.status, SESSION.transparency)


@pytest.mark.parametrize(
    ("privacy", "title", "description", "location"),
    [
        (Privacy.FULL, "Dentist", "Bring a mat", "Studio 1"),
        (Privacy.BUSY_ONLY, BUSY_TITLE, "", ""),
    ],
)
@pytest.mark.parametrize("transparency", list(Transparency))
def test_import_as_a_busy_block(
    privacy: Privacy, title: str, description: str, location: str, transparency: Transparency
) -> None:
    external = event("Dentist", transparency=transparency)
    block = import_event(external, privacy)
    assert (block.title, block.description, block.location) == (title, description, location)
    assert block.transparency is Transparency.BUSY  # a block blocks
    assert block.when == external.when


def test_copy_of_dispatches_on_the_origin() -> None:
    conn = policy(privacy=Privacy.FULL)
    free = event("Walk", transparency=Transparency.FREE)
    assert copy_of(Side.WIX, free, conn, Ov(title="T")).title == "T"
    assert copy_of(Side.WIX, free, conn).transparency is Transparency.FREE
    assert copy_of(Side.EXTERNAL, free, conn, Ov(title="T")).title == "Walk"
    assert copy_of(Side.EXTERNAL, free, conn).transparency is Transparency.BUSY


def test_recurrence_identity_is_copied_for_the_planner_to_translate() -> None:
    instance = replace(SESSION, recurrence=Recurrence(series_id="s1", original_start=SESSION.start))
    assert copy_of(Side.WIX, instance, policy()).recurrence == instance.recurrence


ALL_DAY = event(all_day=True, start=date(2025, 3, 3), end=date(2025, 3, 4))
FREE = event(transparency=Transparency.FREE)


@pytest.mark.parametrize(
    ("external", "block_all_day", "block_free", "reason"),
    [
        (event(), False, False, None),
        (ALL_DAY, False, False, Reason.ALL_DAY_NOT_BLOCKING),
        (ALL_DAY, True, False, None),
        (FREE, False, False, Reason.FREE_NOT_BLOCKING),
        (FREE, False, True, None),
        (replace(ALL_DAY, transparency=Transparency.FREE), True, False, Reason.FREE_NOT_BLOCKING),
        (replace(ALL_DAY, transparency=Transparency.FREE), True, True, None),
    ],
)
def test_what_blocks_time(
    external: CanonicalEvent, block_all_day: bool, block_free: bool, reason: Reason | None
) -> None:
    conn = policy(block_all_day=block_all_day, block_free=block_free)
    assert blocking_reason(external, conn) is reason


def test_by_default_neither_all_day_nor_free_events_block_time() -> None:
    assert blocking_reason(ALL_DAY, policy()) is Reason.ALL_DAY_NOT_BLOCKING
    assert blocking_reason(FREE, policy()) is Reason.FREE_NOT_BLOCKING


SHARED_ALWAYS = {Field.WHEN, Field.STATUS}
TEXT = {Field.TITLE, Field.DESCRIPTION, Field.LOCATION}


@pytest.mark.parametrize(
    ("origin", "privacy", "overrides", "expected"),
    [
        (Side.WIX, Privacy.FULL, None, SHARED_ALWAYS | TEXT | {Field.TRANSPARENCY}),
        (
            Side.WIX,
            Privacy.FULL,
            Ov(title="Class"),
            SHARED_ALWAYS | {Field.DESCRIPTION, Field.LOCATION, Field.TRANSPARENCY},
        ),
        (
            Side.WIX,
            Privacy.FULL,
            Ov(description="D"),
            SHARED_ALWAYS | {Field.TITLE, Field.LOCATION, Field.TRANSPARENCY},
        ),
        (Side.WIX, Privacy.BUSY_ONLY, None, SHARED_ALWAYS | {Field.TRANSPARENCY}),
        (Side.EXTERNAL, Privacy.FULL, None, SHARED_ALWAYS | TEXT),
        (Side.EXTERNAL, Privacy.FULL, Ov(title="ignored"), SHARED_ALWAYS | TEXT),
        (Side.EXTERNAL, Privacy.BUSY_ONLY, None, SHARED_ALWAYS),
    ],
)
def test_which_fields_flow_back_from_a_copy(
    origin: Side, privacy: Privacy, overrides: Ov | None, expected: set[Field]
) -> None:
    assert reversible_fields(origin, policy(privacy=privacy), overrides) == expected


@pytest.mark.parametrize("origin", list(Side))
@pytest.mark.parametrize("privacy", list(Privacy))
@pytest.mark.parametrize("overrides", [None, Ov(title="Class"), Ov(description="D")])
def test_reversible_fields_survive_the_round_trip(
    origin: Side, privacy: Privacy, overrides: Ov | None
) -> None:
    """A reversible field of the copy is the origin's value, so copying it back is lossless;
    every other field of the copy is recomputed from the origin."""
    conn = policy(privacy=privacy)
    copy = copy_of(origin, SESSION, conn, overrides)
    shared = reversible_fields(origin, conn, overrides)
    assert shared  # times and status always flow back
    for field in shared:
        assert value_of(copy, field) == value_of(SESSION, field), field
