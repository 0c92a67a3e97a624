"""Writes sent in waves: independent ones together where the provider allows, the plan's order
kept for everything else, and a stop in a wave still settles what the wave did."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harness.clock import days_ahead

from providers.errors import RateLimited
from providers.local.memory import MemoryCalendar
from sync.actions import Create
from sync.event import CanonicalEvent, Recurrence
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from sync.snapshot import RemoteEvent
from tasks.apply import Applied, DictLinkStore, apply_plan, read_side
from tasks.waves import waves

T0 = days_ahead(7, 9)
POLICY = ConnectionPolicy("calendar-1", "caldav")


@dataclass
class Overlapping:
    """A calendar that takes `write_concurrency` writes at once, each taking a while, and
    records how many were in flight together (the store itself is changed one at a time)."""

    inner: MemoryCalendar
    write_concurrency: int = 4
    refuse: set[str] = field(default_factory=set)  # titles whose create is rate limited
    in_flight: int = 0
    most: int = 0
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __getattr__(self, name: str) -> Any:  # reads go straight to the store
        return getattr(self.inner, name)

    def create(self, event: CanonicalEvent, idempotency_key: str, *, marker: str,
               tag: str | None = None) -> RemoteEvent:  # fmt: skip
        return self._write(event.title, lambda: self.inner.create(
            event, idempotency_key, marker=marker, tag=tag))  # fmt: skip

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        return self._write(event.title, lambda: self.inner.update(event_id, event, if_match))

    def _write(self, title: str, call: Any) -> Any:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.started.append(title)
        time.sleep(0.02)  # the round trip
        try:
            with self.lock:
                if title in self.refuse:
                    raise RateLimited("slow down", 5)
                return call()
        finally:
            with self.lock:
                self.in_flight -= 1
                self.finished.append(title)


def session(title: str, hour: int, **changes: Any) -> CanonicalEvent:
    start = T0 + timedelta(hours=hour)
    return CanonicalEvent(title=title, start=start, end=start + timedelta(hours=1), **changes)


def world() -> tuple[MemoryCalendar, Overlapping, DictLinkStore]:
    return MemoryCalendar("wix"), Overlapping(MemoryCalendar("ext")), DictLinkStore()


def sync(wix: MemoryCalendar, external: Overlapping, links: DictLinkStore) -> Applied:
    providers = {Side.WIX: wix, Side.EXTERNAL: external}
    wix_side, _ = read_side(wix, Side.WIX, None)
    external_side, _ = read_side(external, Side.EXTERNAL, None)  # type: ignore[arg-type]
    result = plan(wix_side, external_side, list(links.links.values()), POLICY)
    return apply_plan(result, providers, links)  # type: ignore[arg-type]


def test_independent_writes_go_out_together_and_settle() -> None:
    wix, external, links = world()
    for n in range(10):
        wix.add(session(f"Session {n}", n))
    applied = sync(wix, external, links)
    assert len(applied.done) == 10 and not applied.failed
    assert external.most == 4  # never more than the provider allows
    assert sorted(e.event.title for e in external.inner.events().values() if e.event) == sorted(
        f"Session {n}" for n in range(10))  # fmt: skip
    assert len(links.links) == 10
    assert sync(wix, external, links).done == []  # settled: nothing left to do


def test_series_writes_keep_the_plan_order() -> None:
    wix, external, links = world()
    series = wix.add(session("Pilates", 0, recurrence=Recurrence(rule="FREQ=DAILY;COUNT=5")))
    moved = session("Pilates", 26, recurrence=Recurrence(
        series_id=series.id, original_start=T0 + timedelta(days=1)))  # fmt: skip
    wix.add(moved)
    for n in range(3):
        wix.add(session(f"Massage {n}", 100 + n))
    wix_side, _ = read_side(wix, Side.WIX, None)
    external_side, _ = read_side(external, Side.EXTERNAL, None)  # type: ignore[arg-type]
    result = plan(wix_side, external_side, [], POLICY)
    grouped = [[a.event.title for a in wave if isinstance(a, Create)]
               for wave in waves(result.actions, {Side.WIX: wix, Side.EXTERNAL: external})]  # type: ignore[dict-item]  # fmt: skip
    assert ["Pilates"] in grouped and grouped.count(["Pilates"]) == 2  # series, then occurrence
    assert sorted(max(grouped, key=len)) == ["Massage 0", "Massage 1", "Massage 2"]
    applied = apply_plan(result, {Side.WIX: wix, Side.EXTERNAL: external}, links)  # type: ignore[dict-item]
    assert not applied.failed and len(applied.done) == 5
    _, second = (i for i, title in enumerate(external.started) if title == "Pilates")
    assert external.finished.index("Pilates") < second  # the occurrence waited for its series


def test_a_stop_in_a_wave_settles_the_rest_of_the_wave_and_goes_no_further() -> None:
    wix, external, links = world()
    for n in range(8):
        wix.add(session(f"Session {n}", n))
    external.refuse = {"Session 1"}
    applied = sync(wix, external, links)
    assert isinstance(applied.stopped_by, RateLimited)
    assert [a.event.title for a, _ in applied.failed] == ["Session 1"]  # type: ignore[union-attr]
    assert len(applied.done) == 3  # the wave's other writes happened and are remembered
    assert len(links.links) == 3 and len(external.started) == 4  # the next wave never went
    external.refuse = set()
    assert len(sync(wix, external, links).done) == 5  # the rest, without doubles
    assert len(external.inner.events()) == 8
