"""Recurring events through the Microsoft provider against the Graph sandbox: calsync's own series
in series form (master + exceptions), foreign series expanded; and the RRULE <-> Graph pattern and
time-zone mappings they rest on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness.microsoft import signed_in

from providers.base import CalendarInfo, SyncWindow
from providers.errors import NotFound, PreconditionFailed
from providers.microsoft.calendar import MicrosoftCalendar
from providers.microsoft.recurrence import (
    SeriesStart,
    UnsupportedRule,
    from_graph,
    occurrence_starts,
    to_graph,
)
from providers.microsoft.timezones import iana_name, windows_name
from sandbox.graph.harness import GraphHarness, graph_harness
from sync.event import CanonicalEvent, EventStatus, Recurrence
from sync.snapshot import RemoteEvent

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = SyncWindow(datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
WEEKLY = "FREQ=WEEKLY;BYDAY=MO;COUNT=5"  # Mondays 4, 11, 18, 25 March, 1 April 2030


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=BERLIN)


def session(title: str = "Yoga", rule: str = WEEKLY) -> CanonicalEvent:
    return CanonicalEvent(
        title, at(4, 18), at(4, 19), time_zone="Europe/Berlin", recurrence=Recurrence(rule=rule)
    )


def exception(series_id: str, day: int, start: datetime, **changes: Any) -> CanonicalEvent:
    base = CanonicalEvent(
        "Yoga",
        start,
        start + timedelta(hours=1),
        time_zone="Europe/Berlin",
        recurrence=Recurrence(series_id=series_id, original_start=at(day, 18)),
    )
    return replace(base, **changes)


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


@pytest.fixture
def calendar(graph: GraphHarness) -> Iterator[MicrosoftCalendar]:
    account = signed_in(graph)
    primary = next(c for c in account.list_calendars() if c.primary)
    yield account.calendar(CalendarInfo(primary.remote_id, primary=True), WINDOW, page_size=3)
    account.close()


def by_kind(changes: tuple[RemoteEvent, ...]) -> dict[str, list[RemoteEvent]]:
    found: dict[str, list[RemoteEvent]] = {"master": [], "exception": [], "single": []}
    for item in changes:
        rec = item.event.recurrence if item.event else None
        kind = "single" if rec is None else "master" if rec.rule else "exception"
        found[kind].append(item)
    return found


# -- calsync's own series ------------------------------------------------------------------------


def test_exported_series_with_moved_and_cancelled_occurrence_reads_back_as_series(
    graph: GraphHarness, calendar: MicrosoftCalendar
) -> None:
    master = calendar.create(session(), "series-1", marker="calsync:c1:s1")
    assert master.event == session() and master.marker == "calsync:c1:s1"
    moved_event = exception(master.id, 11, at(11, 20), title="Yoga (late)")
    moved = calendar.create(moved_event, "exc-1", marker="calsync:c1:e1")
    assert moved.event == moved_event and moved.marker == "calsync:c1:e1"
    dropped_event = exception(master.id, 18, at(18, 18), status=EventStatus.CANCELLED)
    dropped = calendar.create(dropped_event, "exc-2", marker="calsync:c1:e2")
    assert dropped.event == dropped_event

    view = graph.state.calendar_view(graph.user.id, None, WINDOW.start, WINDOW.end)
    assert [(i.kind, i.start) for i in view] == [
        ("occurrence", at(4, 18)),
        ("exception", at(11, 20)),
        ("occurrence", at(25, 18)),
    ]  # 1 April is past the window

    page = calendar.list_changes(None)
    kinds = by_kind(page.changes)
    assert [m.id for m in kinds["master"]] == [master.id] and kinds["single"] == []
    assert kinds["master"][0].event == session()
    exceptions = {e.id: e for e in kinds["exception"]}
    assert set(exceptions) == {moved.id, dropped.id}
    assert exceptions[moved.id].event == moved_event
    assert exceptions[moved.id].marker == "calsync:c1:e1"
    cancelled_listed = exceptions[dropped.id].event
    assert cancelled_listed is not None and cancelled_listed.status is EventStatus.CANCELLED
    assert cancelled_listed.recurrence == dropped_event.recurrence
    assert calendar.get(moved.id).event == moved_event
    cancelled_now = calendar.get(dropped.id).event
    assert cancelled_now is not None and cancelled_now.status is EventStatus.CANCELLED


def test_series_changes_arrive_incrementally_in_series_form(
    graph: GraphHarness, calendar: MicrosoftCalendar
) -> None:
    master = calendar.create(session(), "series-1", marker="calsync:c1:s1")
    cursor = calendar.list_changes(None).next_cursor
    # The owner moves one occurrence and cancels another in Outlook.
    occurrences = graph.state.instances(graph.user.id, master.id, WINDOW.start, WINDOW.end)
    late = {
        "start": {"dateTime": "2030-03-11T19:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-11T20:00:00", "timeZone": "UTC"},
    }
    graph.state.update_event(graph.user.id, occurrences[1].id, late, check_access=False)
    graph.state.delete_event(graph.user.id, occurrences[3].id, check_access=False)

    page = calendar.list_changes(cursor)
    kinds = by_kind(page.changes)
    assert [m.id for m in kinds["master"]] == [master.id]
    found = {
        e.event.recurrence.original_start: e.event
        for e in kinds["exception"]
        if e.event and e.event.recurrence
    }
    assert found[at(11, 18)].start == at(11, 20) and found[at(11, 18)].status.value == "confirmed"
    assert found[at(25, 18)].status is EventStatus.CANCELLED

    graph.state.delete_event(graph.user.id, master.id, check_access=False)
    gone = calendar.list_changes(page.next_cursor)
    assert master.id in {r.id for r in gone.changes if r.deleted}


def test_updating_the_master_text_keeps_its_exceptions(
    graph: GraphHarness, calendar: MicrosoftCalendar
) -> None:
    master = calendar.create(session(), "series-1", marker="calsync:c1:s1")
    moved = calendar.create(exception(master.id, 11, at(11, 20)), "exc-1", marker="calsync:c1:e1")
    current = calendar.get(master.id)  # the new exception changed the master's changeKey too
    assert current.version != master.version
    renamed = calendar.update(master.id, session("Yoga flow"), current.version)
    assert renamed.event == session("Yoga flow")
    assert calendar.get(moved.id).event == exception(master.id, 11, at(11, 20))
    longer = calendar.update(
        master.id, session("Yoga flow", "FREQ=WEEKLY;BYDAY=MO;COUNT=8"), renamed.version
    )
    assert longer.event is not None and longer.event.recurrence == Recurrence(
        rule="FREQ=WEEKLY;BYDAY=MO;COUNT=8"
    )


def test_exception_writes_honour_versions_and_missing_slots(
    graph: GraphHarness, calendar: MicrosoftCalendar
) -> None:
    master = calendar.create(session(), "series-1", marker="calsync:c1:s1")
    moved = calendar.create(exception(master.id, 11, at(11, 20)), "exc-1", marker="calsync:c1:e1")
    later = calendar.update(moved.id, exception(master.id, 11, at(11, 21)), moved.version)
    assert later.id == moved.id and later.event == exception(master.id, 11, at(11, 21))
    assert later.marker == "calsync:c1:e1" and later.version != moved.version
    occurrence = next(
        i
        for i in graph.state.instances(graph.user.id, master.id, WINDOW.start, WINDOW.end)
        if i.kind == "exception"
    )
    graph.state.update_event(
        graph.user.id, occurrence.id, {"subject": "owner edit"}, check_access=False
    )
    with pytest.raises(PreconditionFailed):
        calendar.update(moved.id, exception(master.id, 11, at(11, 22)), later.version)
    calendar.delete(moved.id, None)  # deleting an exception cancels that occurrence
    gone = calendar.get(moved.id).event
    assert gone is not None and gone.status is EventStatus.CANCELLED
    calendar.delete(moved.id, None)
    with pytest.raises(NotFound):  # a cancelled occurrence cannot come back in Graph
        calendar.update(moved.id, exception(master.id, 11, at(11, 20)), None)
    not_a_slot = f"{master.id}!20300312T170000Z"
    assert calendar.get(not_a_slot).deleted


# -- foreign series ------------------------------------------------------------------------------


def test_foreign_series_is_listed_expanded_with_exceptions_applied(
    graph: GraphHarness, calendar: MicrosoftCalendar
) -> None:
    body = {
        "subject": "Standup",
        "start": {"dateTime": "2030-03-04T08:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-03-04T08:15:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 5},
        },
    }
    master, _ = graph.state.create_event(graph.user.id, body, check_access=False)
    occurrences = graph.state.instances(graph.user.id, master.id, WINDOW.start, WINDOW.end)
    graph.state.update_event(
        graph.user.id,
        occurrences[1].id,
        {
            "subject": "Standup (late)",
            "start": {"dateTime": "2030-03-05T10:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2030-03-05T10:15:00", "timeZone": "W. Europe Standard Time"},
        },
        check_access=False,
    )
    graph.state.delete_event(graph.user.id, occurrences[2].id, check_access=False)

    page = calendar.list_changes(None)
    listed = {r.id: r.event for r in page.changes if r.event}
    assert set(listed) == {occurrences[i].id for i in (0, 1, 3, 4)}
    assert all(e.recurrence is None and e.time_zone == "Europe/Berlin" for e in listed.values())
    assert listed[occurrences[1].id].title == "Standup (late)"
    assert listed[occurrences[1].id].start == at(5, 10)
    assert listed[occurrences[0].id].start == at(4, 8)
    assert all(r.marker is None for r in page.changes)
    assert calendar.get(occurrences[3].id).event == listed[occurrences[3].id]

    graph.state.delete_event(graph.user.id, occurrences[4].id, check_access=False)
    later = calendar.list_changes(page.next_cursor)
    assert [r.id for r in later.changes if r.deleted] == [occurrences[4].id]

    # Moving an imported occurrence writes just that occurrence.
    event = listed[occurrences[3].id]
    moved = replace(
        event, start=event.start + timedelta(hours=1), end=event.end + timedelta(hours=1)
    )
    current = calendar.get(occurrences[3].id)
    assert calendar.update(occurrences[3].id, moved, current.version).event == moved
    calendar.delete(occurrences[0].id, None)
    remaining = graph.state.calendar_view(graph.user.id, None, WINDOW.start, WINDOW.end)
    assert [i.id for i in remaining] == [occurrences[1].id, occurrences[3].id]


# -- mappings ------------------------------------------------------------------------------------

TIMED = SeriesStart(datetime(2030, 3, 4, 18, tzinfo=BERLIN), "W. Europe Standard Time")


@pytest.mark.parametrize(
    "rule, pattern",
    [
        (
            "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6",
            {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "wednesday"],
                "firstDayOfWeek": "monday",
            },
        ),
        ("FREQ=DAILY;INTERVAL=2;UNTIL=20300320T170000Z", {"type": "daily", "interval": 2}),
        ("FREQ=MONTHLY;BYMONTHDAY=4", {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 4}),
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
        ),
        (
            "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=4",
            {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 4, "month": 3},
        ),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;WKST=SU",
            {
                "type": "weekly",
                "interval": 2,
                "daysOfWeek": ["tuesday"],
                "firstDayOfWeek": "sunday",
            },
        ),
    ],
)
def test_rules_map_to_graph_patterns_and_back(rule: str, pattern: dict[str, Any]) -> None:
    graph = to_graph(rule, TIMED)
    assert graph["pattern"] == pattern
    assert graph["range"]["startDate"] == "2030-03-04"
    assert graph["range"]["recurrenceTimeZone"] == "W. Europe Standard Time"
    assert from_graph(graph, TIMED) == rule


def test_range_kinds() -> None:
    assert to_graph("FREQ=DAILY;COUNT=3", TIMED)["range"]["numberOfOccurrences"] == 3
    until = to_graph("FREQ=DAILY;UNTIL=20300309T230000Z", TIMED)["range"]
    assert (until["type"], until["endDate"]) == ("endDate", "2030-03-10")  # local date
    assert to_graph("FREQ=DAILY", TIMED)["range"]["type"] == "noEnd"
    all_day = SeriesStart(date(2030, 3, 4), "UTC")
    assert from_graph(to_graph("FREQ=DAILY;UNTIL=20300310", all_day), all_day) == (
        "FREQ=DAILY;UNTIL=20300310"
    )


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY",
        "FREQ=WEEKLY;BYHOUR=9",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
        "FREQ=DAILY;COUNT=2;UNTIL=20300101",
        "BYDAY=MO",
    ],
)
def test_rules_graph_cannot_express(rule: str) -> None:
    with pytest.raises(UnsupportedRule):
        to_graph(rule, TIMED)


def test_occurrence_starts_keep_wall_time_across_daylight_saving() -> None:
    starts = occurrence_starts(
        "FREQ=WEEKLY;BYDAY=MO;COUNT=5",
        TIMED,
        datetime(2030, 3, 1, tzinfo=UTC),
        datetime(2030, 5, 1, tzinfo=UTC),
    )
    assert [s.hour for s in starts if isinstance(s, datetime)] == [18] * 5  # 31 March: summer
    assert [s.utcoffset() for s in starts if isinstance(s, datetime)][-1] == timedelta(hours=2)


def test_zone_names_use_cldr_not_o365s_reverse_table() -> None:
    from O365.utils.windows_tz import WIN_TO_IANA

    assert WIN_TO_IANA["Pacific Standard Time"] == "US/Pacific-New"  # the broken mapping
    assert iana_name("Pacific Standard Time") == "America/Los_Angeles"
    assert iana_name("W. Europe Standard Time") == "Europe/Berlin"
    assert iana_name("Europe/Amsterdam") == "Europe/Amsterdam"
    assert iana_name("Customized Time Zone") is None
    assert windows_name("Europe/Amsterdam") == "W. Europe Standard Time"
    assert windows_name("UTC") == "UTC"


def test_a_zone_keeps_its_exact_name_through_graph(calendar: MicrosoftCalendar) -> None:
    amsterdam = ZoneInfo("Europe/Amsterdam")
    start = datetime(2030, 3, 6, 9, tzinfo=amsterdam)
    event = CanonicalEvent("Call", start, start + timedelta(hours=1), time_zone="Europe/Amsterdam")
    made = calendar.create(event, "k", marker="calsync:c1:l1")
    assert calendar.get(made.id).event == event
    pacific = datetime(2030, 3, 7, 9, tzinfo=ZoneInfo("America/Los_Angeles"))
    other = replace(
        event, start=pacific, end=pacific + timedelta(hours=1), time_zone="America/Los_Angeles"
    )
    assert calendar.get(calendar.create(other, "k2", marker="calsync:c1:l2").id).event == other
    day = CanonicalEvent(
        "Off", date(2030, 3, 8), date(2030, 3, 9), all_day=True, time_zone="Europe/Amsterdam"
    )
    assert calendar.get(calendar.create(day, "k3", marker="calsync:c1:l3").id).event == day
