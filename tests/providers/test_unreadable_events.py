"""Google and Graph events that come without fields they must have (the sandboxes' damage
fault): listed as unreadable, never as deleted, in full and incremental listings and by `get`,
with a reason naming the missing field, while the rest of the calendar lists normally; once
repaired they read normally again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from harness.clock import days_ahead
from harness.google import BASE, USER, GoogleWorld, timed
from harness.microsoft import signed_in

from providers.base import CalendarInfo, CalendarProvider, ChangePage, SyncWindow
from providers.google.calendar import GoogleCalendar
from providers.microsoft.account import MicrosoftAccount
from sandbox.graph.harness import GraphHarness, graph_harness
from sync.event import CanonicalEvent, Recurrence
from sync.snapshot import RemoteEvent

BERLIN = "Europe/Berlin"
MARKER = "calsync:conn-1:link-1"
DAY = timedelta(days=1)
Damage = Callable[[list[str]], object]  # drops these fields of one event ([]: repairs it)


def by_id(page: ChangePage) -> dict[str, RemoteEvent]:
    return {item.id: item for item in page.changes}


def assert_unreadable(item: RemoteEvent, field: str) -> None:
    assert item.unreadable is not None and f"'{field}'" in item.unreadable, item
    assert item.event is None and not item.deleted


def readable(item: RemoteEvent) -> CanonicalEvent:
    assert item.unreadable is None and item.event is not None, item
    return item.event


def check_damage_and_repair(
    calendar: CalendarProvider,
    damaged_id: str,
    field: str,
    others: list[str],
    damage: list[str],
    set_damage: Damage,
) -> None:
    """Damage one event: unreadable everywhere, the others unaffected; repaired: read as
    before."""
    first = calendar.list_changes(None)
    before = readable(by_id(first)[damaged_id])

    set_damage(damage)
    changed = calendar.list_changes(first.next_cursor)
    assert_unreadable(by_id(changed)[damaged_id], field)
    full = by_id(calendar.list_changes(None))
    assert_unreadable(full[damaged_id], field)
    for other in others:
        readable(full[other])
    assert_unreadable(calendar.get(damaged_id), field)

    set_damage([])
    assert readable(by_id(calendar.list_changes(changed.next_cursor))[damaged_id]) == before
    assert readable(by_id(calendar.list_changes(None))[damaged_id]) == before
    assert readable(calendar.get(damaged_id)) == before


# -- Google ----------------------------------------------------------------------------------


@pytest.fixture
def google(world: GoogleWorld) -> GoogleCalendar:
    world.reset()
    return world.calendar()


def foreign(world: GoogleWorld, summary: str, start: datetime, **extra: object) -> str:
    """An event someone made in Google Calendar itself."""
    return str(world.state.insert_event(USER, {"summary": summary, **timed(start), **extra})["id"])


def stamp(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def google_damage(world: GoogleWorld, event_id: str) -> Damage:
    return lambda drop: world.state.damage_event(USER, event_id, drop)


@pytest.mark.parametrize(("drop", "field"), [(["start", "end"], "start"), (["end"], "end")])
def test_a_google_event_without_its_times_is_unreadable_not_deleted(
    world: GoogleWorld, google: GoogleCalendar, drop: list[str], field: str
) -> None:
    damaged = foreign(world, "dentist", BASE)
    other = foreign(world, "gym", BASE + DAY)
    check_damage_and_repair(google, damaged, field, [other], drop, google_damage(world, damaged))


def test_an_occurrence_of_someone_elses_google_series_without_its_times_is_unreadable(
    world: GoogleWorld, google: GoogleCalendar
) -> None:
    series = foreign(world, "standup", BASE, recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    first, second, third = (f"{series}_{stamp(BASE + n * DAY)}" for n in range(3))
    check_damage_and_repair(
        google, second, "start", [first, third], ["start", "end"], google_damage(world, second)
    )


def test_an_exception_of_calsyncs_own_google_series_without_its_times_is_unreadable(
    world: GoogleWorld, google: GoogleCalendar
) -> None:
    rule = Recurrence(rule="FREQ=DAILY;COUNT=3")
    yoga = CanonicalEvent("Yoga", BASE, BASE + timedelta(hours=1), time_zone=BERLIN,
                          recurrence=rule)  # fmt: skip
    series = google.create(yoga, "wix:series", marker=MARKER).id
    moved = CanonicalEvent(
        "Yoga (moved)",
        BASE + DAY + timedelta(hours=2),
        BASE + DAY + timedelta(hours=3),
        time_zone=BERLIN,
        recurrence=Recurrence(series_id=series, original_start=BASE + DAY),
    )
    exception = google.create(moved, "wix:exception", marker=MARKER).id
    check_damage_and_repair(
        google, exception, "start", [series], ["start", "end"], google_damage(world, exception)
    )


# -- Microsoft Graph -------------------------------------------------------------------------

WINDOW_START = days_ahead(7, 0)
Outlook = tuple[GraphHarness, MicrosoftAccount]


@pytest.fixture(scope="module")
def graph() -> Iterator[Outlook]:
    with graph_harness() as harness:
        account = signed_in(harness)
        yield harness, account
        account.close()


def outlook_calendar(graph: Outlook, name: str) -> tuple[CalendarProvider, str]:
    """A fresh calendar in the mailbox, as calsync reads it, and its id."""
    harness, account = graph
    made = harness.state.add_calendar(harness.user.id, name)
    window = SyncWindow(WINDOW_START, WINDOW_START + timedelta(days=31))
    return account.calendar(CalendarInfo(made.id, name=name), window), made.id


def outlook_event(graph: Outlook, calendar_id: str, subject: str, day: int, **extra: object
                  ) -> str:  # fmt: skip
    harness, _ = graph
    start = WINDOW_START + timedelta(days=day, hours=9)

    def utc(moment: datetime) -> dict[str, str]:
        return {"dateTime": f"{moment:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}

    body = {"subject": subject, "start": utc(start), "end": utc(start + timedelta(hours=1)),
            **extra}  # fmt: skip
    instance, _ = harness.state.create_event(
        harness.user.id, body, calendar_id=calendar_id, check_access=False
    )
    return instance.id


def graph_damage(graph: Outlook, event_id: str) -> Damage:
    harness, _ = graph
    return lambda drop: harness.state.damage_event(harness.user.id, event_id, drop)


@pytest.mark.parametrize(
    ("drop", "field"), [(["start", "end"], "start"), (["type"], "type"), (["end"], "end")]
)
def test_an_outlook_event_without_its_times_or_type_is_unreadable_not_deleted(
    graph: Outlook, drop: list[str], field: str
) -> None:
    calendar, calendar_id = outlook_calendar(graph, f"single {field} {len(drop)}")
    damaged = outlook_event(graph, calendar_id, "dentist", 3)
    other = outlook_event(graph, calendar_id, "gym", 4)
    check_damage_and_repair(calendar, damaged, field, [other], drop, graph_damage(graph, damaged))


@pytest.mark.parametrize(("drop", "field"), [(["start", "end"], "start"), (["type"], "type")])
def test_an_occurrence_of_someone_elses_outlook_series_without_its_times_or_type_is_unreadable(
    graph: Outlook, drop: list[str], field: str
) -> None:
    calendar, calendar_id = outlook_calendar(graph, f"series {field}")
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": f"{WINDOW_START + 3 * DAY:%Y-%m-%d}",
            "numberOfOccurrences": 3,
        },
    }
    master = outlook_event(graph, calendar_id, "standup", 3, recurrence=recurrence)
    harness, _ = graph
    first, second, third = (
        i.id for i in harness.state.instances(
            harness.user.id, master, WINDOW_START, WINDOW_START + timedelta(days=31)
        )
    )  # fmt: skip
    check_damage_and_repair(
        calendar, second, field, [first, third], drop, graph_damage(graph, second)
    )
