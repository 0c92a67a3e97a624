"""The canonical event: validation, the normal form and its content hash."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sync_builders import event

from sync.event import (
    CanonicalEvent,
    EventStatus,
    Field,
    Recurrence,
    Transparency,
    When,
    content_hash,
    same_content,
    value_of,
    with_value,
)

BERLIN_WINTER = timezone(timedelta(hours=1))
NINE_UTC = datetime(2025, 3, 3, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("trailing spaces in the title", {"title": "Yoga  "}),
        ("surrounding whitespace in the description", {"description": "\n Bring a mat \n"}),
        ("CRLF line endings", {"description": "Bring a mat\r\n"}),
        ("the same instant in another offset", {"start": NINE_UTC.astimezone(BERLIN_WINTER)}),
        ("sub-second precision", {"end": NINE_UTC + timedelta(hours=1, microseconds=5)}),
        ("a location padded with spaces", {"location": "  Studio 1"}),
    ],
)
def test_rendering_differences_are_not_content_changes(name: str, changes: dict[str, Any]) -> None:
    original = event()
    rendered = replace(original, **changes)
    assert same_content(original, rendered), name
    assert content_hash(original) == content_hash(rendered), name


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("title", {"title": "Pilates"}),
        ("description", {"description": "Bring two mats"}),
        ("location", {"location": "Studio 2"}),
        ("start", {"start": NINE_UTC - timedelta(minutes=30)}),
        ("end", {"end": NINE_UTC + timedelta(hours=2)}),
        ("time zone kept as its own field", {"time_zone": "Europe/Berlin"}),
        ("status", {"status": EventStatus.CANCELLED}),
        ("transparency", {"transparency": Transparency.FREE}),
        ("series rule", {"recurrence": Recurrence(rule="FREQ=WEEKLY;BYDAY=MO")}),
        ("instance slot", {"recurrence": Recurrence(series_id="s1", original_start=NINE_UTC)}),
    ],
)
def test_every_synced_field_changes_the_hash(name: str, changes: dict[str, Any]) -> None:
    original = event()
    changed = replace(original, **changes)
    assert not same_content(original, changed), name
    assert content_hash(original) != content_hash(changed), name


@pytest.mark.parametrize(
    ("start", "end", "all_day", "message"),
    [
        (NINE_UTC.replace(tzinfo=None), NINE_UTC, False, "timezone-aware"),
        (date(2025, 3, 3), date(2025, 3, 4), False, "timezone-aware"),
        (NINE_UTC, NINE_UTC + timedelta(hours=1), True, "dated"),
        (NINE_UTC, NINE_UTC - timedelta(minutes=1), False, "before it starts"),
        (date(2025, 3, 4), date(2025, 3, 3), True, "before it starts"),
    ],
)
def test_invalid_times_are_refused(
    start: datetime | date, end: datetime | date, all_day: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CanonicalEvent("x", start, end, all_day=all_day)


def test_all_day_events_are_dates() -> None:
    day = CanonicalEvent("Holiday", date(2025, 3, 3), date(2025, 3, 4), all_day=True)
    assert day.when == When(date(2025, 3, 3), date(2025, 3, 4), True, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (Field.TITLE, "Pilates"),
        (Field.DESCRIPTION, "New"),
        (Field.LOCATION, "Park"),
        (Field.STATUS, EventStatus.CANCELLED),
        (Field.TRANSPARENCY, Transparency.FREE),
        (Field.WHEN, When(date(2025, 3, 5), date(2025, 3, 6), True, "Europe/Berlin")),
    ],
)
def test_a_field_value_written_is_read_back(field: Field, value: Any) -> None:
    changed = with_value(event(), field, value)
    assert value_of(changed, field) == value
    others = [f for f in Field if f is not field]
    assert all(value_of(changed, f) == value_of(event(), f) for f in others)


def test_a_value_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(TypeError):
        with_value(event(), Field.STATUS, "cancelled-ish")


@settings(max_examples=100)
@given(
    title=st.text(max_size=20),
    minutes=st.integers(-10_000, 10_000),
    offset=st.integers(-12, 14),
)
def test_the_hash_depends_on_the_instant_not_its_rendering(
    title: str, minutes: int, offset: int
) -> None:
    start = NINE_UTC + timedelta(minutes=minutes)
    utc = CanonicalEvent(title, start, start + timedelta(hours=1))
    local_zone = timezone(timedelta(hours=offset))
    end = start + timedelta(hours=1)
    local = CanonicalEvent(f"  {title}\n", start.astimezone(local_zone), end.astimezone(local_zone))
    assert content_hash(utc) == content_hash(local)
    assert content_hash(utc) != content_hash(replace(local, start=start - timedelta(seconds=1)))
