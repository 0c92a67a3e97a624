"""The links an incremental run loads from the database are those `sync.relevance` picks in
memory, found by the keys each row keeps; and the count the mass-deletion guard weighs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from harness.clock import days_ahead
from harness.pipeline import Pair
from sqlalchemy import Engine, update

from models import Link as LinkRow
from sync.event import CanonicalEvent, Recurrence
from sync.link import Link
from sync.relevance import related
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot
from tasks.context import WorkerContext
from tasks.link_store import DatabaseLinkStore

START = days_ahead(3, 9)


def event(title: str, hours: int = 0, series: str | None = None) -> CanonicalEvent:
    begin = START + timedelta(hours=hours)
    recurrence = None if series is None else Recurrence(series_id=series, original_start=begin)
    return CanonicalEvent(title, begin, begin + timedelta(hours=1), recurrence=recurrence)


def settled(link_id: str, wix_id: str, external_id: str, content: CanonicalEvent,
            origin: Side = Side.WIX) -> Link:  # fmt: skip
    return Link(link_id, origin, content, wix_id, external_id, "v1", "v1", content, content)


def links() -> list[Link]:
    weekly = replace(event("Pilates"), recurrence=Recurrence(rule="FREQ=WEEKLY;COUNT=4"))
    return [
        settled("a", "w-a", "e-a", event("Dentist")),
        settled("b", "w-b", "e-b", event("Lunch", 2), Side.EXTERNAL),
        settled("series", "w-s", "e-s", weekly),
        settled("occurrence", "w-o", "e-o", event("Pilates, moved", 5, series="w-s")),
        settled("other-occurrence", "w-o2", "e-o2", event("Pilates", 7, series="w-s")),
        # owed: the origin has not received a merged edit yet
        replace(settled("owed", "w-owed", "e-owed", event("Retitled")),
                wix_seen=event("Old title")),
        # a tombstone: its copy was removed on purpose
        Link("tomb", Side.EXTERNAL, event("Free time", 9), None, "e-t", None, "v1",
             None, event("Free time", 9), tombstone=True),
        settled("untouched", "w-u", "e-u", event("Untouched", 11)),
        # calsync's Wix copy of a person's series, and an exception a person added to that copy
        settled("copied-series", "w-c", "e-c", replace(weekly, title="Yoga"), Side.EXTERNAL),
        replace(settled("wix-exception", "w-x", "e-x", event("Yoga, moved", 13, series="w-c")),
                external_seen=event("Yoga, moved", 13, series="e-c")),
    ]


def snapshot(side: Side, *items: RemoteEvent) -> SideSnapshot:
    return SideSnapshot.changes(side, items)


def test_the_database_picks_what_the_planner_needs(
    pair: Pair, context: WorkerContext, engine: Engine
) -> None:
    store = DatabaseLinkStore(context.sessions, pair.connection_id, pair.calendar_id)
    every = links()
    for link in every:
        store.save_all({link.link_id: link})
    cases = [
        # nothing listed: only the unsettled
        (snapshot(Side.WIX), snapshot(Side.EXTERNAL)),
        # an external edit of one pair
        (snapshot(Side.WIX), snapshot(Side.EXTERNAL, RemoteEvent("e-b", "v2", event("Brunch")))),
        # the series deleted in Wix: its occurrences come along
        (snapshot(Side.WIX, RemoteEvent.gone("w-s")), snapshot(Side.EXTERNAL)),
        # an occurrence listed: its series comes along
        (snapshot(Side.WIX, RemoteEvent("w-o", "v2", event("Pilates", 6, series="w-s"))),
         snapshot(Side.EXTERNAL)),
        # the person's series deleted: the exception added in Wix to its copy comes along
        (snapshot(Side.WIX), snapshot(Side.EXTERNAL, RemoteEvent.gone("e-c"))),
        # that exception edited in Wix: the series it belongs to there comes along
        (snapshot(Side.WIX, RemoteEvent("w-x", "v2", event("Yoga", 14, series="w-c"))),
         snapshot(Side.EXTERNAL)),
    ]
    for wix, external in cases:
        expected = {link.link_id for link in related(every, wix, external)}
        assert {link.link_id for link in store.related(wix, external)} == expected
        assert "untouched" not in expected and {"owed", "tomb"} <= expected
    by_series = {link.link_id for link in store.related(*cases[2])}
    assert {"series", "occurrence", "other-occurrence"} <= by_series
    for case in cases[4:]:
        assert {"copied-series", "wix-exception"} <= {link.link_id for link in store.related(*case)}
    assert store.linked() == {Side.WIX: 9, Side.EXTERNAL: 10}


def test_rows_from_before_the_keys_count_as_unsettled_until_a_full_run_reads_them(
    pair: Pair, context: WorkerContext, engine: Engine
) -> None:
    store = DatabaseLinkStore(context.sessions, pair.connection_id, pair.calendar_id)
    for link in links():
        store.save_all({link.link_id: link})
    with engine.begin() as db:  # as the migration leaves them
        db.execute(update(LinkRow).values(unsettled=True, wix_series_id=None,
                                          external_series_id=None))
    assert len(store.related(snapshot(Side.WIX), snapshot(Side.EXTERNAL))) == len(links())
    store.all(refresh_keys=True)
    found = store.related(snapshot(Side.WIX, RemoteEvent.gone("w-s")), snapshot(Side.EXTERNAL))
    assert {link.link_id for link in found} == {
        "owed", "tomb", "series", "occurrence", "other-occurrence"}  # fmt: skip
