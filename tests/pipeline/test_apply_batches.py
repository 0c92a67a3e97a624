"""Writes sent as batches to a calendar that takes several in one request (the local store over
HTTP): fewer round trips, and each write still idempotent, conditional and settled on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from harness.clock import days_ahead

from providers.errors import PreconditionFailed, RateLimited
from providers.local.calendar import LocalCalendar
from providers.local.memory import MemoryCalendar
from sandbox.server import serve_in_thread
from sandbox.store import StoreState, create_app
from sandbox.store.app import HttpFault
from sync.actions import PlanResult
from sync.event import CanonicalEvent
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from tasks.apply import Applied, DictLinkStore, apply_plan, read_side

T0 = days_ahead(7, 9)
POLICY = ConnectionPolicy("calendar-1", "google")


@pytest.fixture
def store() -> Iterator[tuple[StoreState, LocalCalendar]]:
    state = StoreState()
    state.add_calendar("ext")
    with serve_in_thread(create_app(state)) as served, httpx.Client() as http:
        yield state, LocalCalendar(served.base_url, "ext", http)


def session(title: str, hour: int, **changes: Any) -> CanonicalEvent:
    start = T0 + timedelta(hours=hour)
    return CanonicalEvent(title=title, start=start, end=start + timedelta(hours=1), **changes)


def planned(wix: MemoryCalendar, external: LocalCalendar, links: DictLinkStore) -> PlanResult:
    wix_side, _ = read_side(wix, Side.WIX, None)
    external_side, _ = read_side(external, Side.EXTERNAL, None)
    return plan(wix_side, external_side, list(links.links.values()), POLICY)


def sync(wix: MemoryCalendar, external: LocalCalendar, links: DictLinkStore) -> Applied:
    result = planned(wix, external, links)
    return apply_plan(result, {Side.WIX: wix, Side.EXTERNAL: external}, links)


def batch_requests(state: StoreState) -> list[int]:
    return [status for _, method, path, status in state.requests
            if method == "POST" and path.endswith("/batch")]  # fmt: skip


def titles(state: StoreState) -> list[str]:
    events = state.calendar("ext").events().values()
    return sorted(e.event.title for e in events if e.event is not None)


def test_a_hundred_and_twenty_creates_go_out_in_three_requests(store: Any) -> None:
    state, external = store
    wix, links = MemoryCalendar("wix"), DictLinkStore()
    for n in range(120):
        wix.add(session(f"Session {n:03}", n))
    applied = sync(wix, external, links)
    assert len(applied.done) == 120 and not applied.failed
    assert batch_requests(state) == [200, 200, 200]  # 50 + 50 + 20
    assert titles(state) == [f"Session {n:03}" for n in range(120)]
    assert len(links.links) == 120
    assert sync(wix, external, links).done == []  # settled: nothing left to do


def test_a_batch_sent_again_makes_no_second_copy(store: Any) -> None:
    state, external = store
    wix = MemoryCalendar("wix")
    for n in range(30):
        wix.add(session(f"Session {n:02}", n))
    result = planned(wix, external, DictLinkStore())
    providers = {Side.WIX: wix, Side.EXTERNAL: external}
    first, again = apply_plan(result, providers, DictLinkStore()), DictLinkStore()
    second = apply_plan(result, providers, again)  # a run whose links were never saved
    assert len(first.done) == len(second.done) == 30
    assert len(titles(state)) == 30
    assert {link.external_id for link in again.links.values()} == set(
        state.calendar("ext").events())  # fmt: skip


def test_a_stale_write_fails_alone_and_the_rest_of_its_batch_lands(store: Any) -> None:
    state, external = store
    wix, links = MemoryCalendar("wix"), DictLinkStore()
    made = [wix.add(session(f"Session {n}", n)) for n in range(5)]
    sync(wix, external, links)
    for n, remote in enumerate(made):
        wix.edit(remote.id, session(f"Moved {n}", n))
    result = planned(wix, external, links)
    edited = next(link.external_id for link in links.links.values() if link.wix_id == made[2].id)
    assert edited is not None
    state.calendar("ext").touch(edited)  # the person saved it after calsync read it
    applied = apply_plan(result, {Side.WIX: wix, Side.EXTERNAL: external}, links)
    assert applied.stopped_by is None and len(applied.done) == 4
    assert [type(error) for _, error in applied.failed] == [PreconditionFailed]
    assert titles(state) == ["Moved 0", "Moved 1", "Moved 3", "Moved 4", "Session 2"]


def test_a_throttled_batch_fails_each_of_its_writes_and_stops_the_run(store: Any) -> None:
    state, external = store
    wix, links = MemoryCalendar("wix"), DictLinkStore()
    for n in range(10):
        wix.add(session(f"Session {n}", n))
    state.faults.append(HttpFault(429, times=1, retry_after=3, path_contains="/batch"))
    applied = sync(wix, external, links)
    assert isinstance(applied.stopped_by, RateLimited)
    assert len(applied.failed) == 10 and not applied.done and not links.links
    assert len(sync(wix, external, links).done) == 10  # later, all of them, once
    assert len(titles(state)) == 10
