"""The burst: people changing both calendars at once, and the tally of what calsync made of it.

A staff member creates, edits and deletes events in their calendar (`alice`) while the business
creates, edits and cancels sessions on the Wix side (`wix-s1`), alternately, at a steady rate.
What people made carries no marker; what calsync wrote carries its link marker. So the store
itself says what should be where: every person's event still there has exactly one copy on the
other side, with the same title, description, location, start and end, and no copy is there for
anything else."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from bench.faults.deployment import EXTERNAL, WIX
from sandbox.store import StoreState
from sync.codec import event_to_dict
from sync.event import CanonicalEvent, as_instant

# The day after tomorrow, 07:00 UTC: inside the default sync window whenever the matrix runs.
START = (datetime.now(UTC) + timedelta(days=2)).replace(hour=7, minute=0, second=0, microsecond=0)
KINDS = ("create", "edit", "delete")
WEIGHTS = (5, 3, 2)  # half creates, then edits, then deletes


@dataclass
class Person:
    """Makes change `n` on one side or the other through the store's own (fault-free) routes."""

    client: httpx.Client
    store_url: str
    rng: random.Random
    live: dict[str, list[str]] = field(default_factory=lambda: {EXTERNAL: [], WIX: []})
    made: Counter[str] = field(default_factory=Counter)

    def change(self, n: int) -> None:
        side = (EXTERNAL, WIX)[n % 2]
        kind = self.rng.choices(KINDS, WEIGHTS)[0] if self.live[side] else "create"
        events = f"{self.store_url}/_store/calendars/{side}/events"
        if kind == "create":
            answer = self.client.post(events, json={"event": event_to_dict(_event(side, n))})
            self.live[side].append(str(answer.raise_for_status().json()["id"]))
        elif kind == "edit":  # retitled and moved
            event_id = self.rng.choice(self.live[side])
            edited = {"event": event_to_dict(_event(side, n))}
            self.client.put(f"{events}/{event_id}", json=edited).raise_for_status()
        else:
            event_id = self.live[side].pop(self.rng.randrange(len(self.live[side])))
            self.client.delete(f"{events}/{event_id}").raise_for_status()
        self.made[kind] += 1


def _event(side: str, n: int) -> CanonicalEvent:
    begin = START + timedelta(minutes=15 * n)
    who = "session" if side == WIX else "event"
    return CanonicalEvent(f"{who} {n}", begin, begin + timedelta(minutes=45),
                          description=f"change {n}", location=f"room {n % 7}")  # fmt: skip


def burst(person: Person, changes: int, rate: float, midway: Callable[[], None]) -> None:
    """`changes` changes at `rate` per second; `midway()` when half are made (the pace goes
    on after it, if it held the burst back)."""
    started = time.monotonic()
    for n in range(changes):
        if n == changes // 2:
            paused = time.monotonic()
            midway()
            started += time.monotonic() - paused
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
        person.change(n)


Key = tuple[str, str, str, str, datetime, datetime]  # the side a copy is on, then its fields


def _key(side: str, event: CanonicalEvent) -> Key:
    return (side, event.title, event.description, event.location, as_instant(event.start),
            as_instant(event.end))  # fmt: skip


@dataclass(frozen=True)
class Tally:
    expected: int  # copies that should exist: one per person's event still there
    lost: int  # expected, but no copy with those fields
    duplicated: int  # copies beyond the first of an expected event
    extra: int  # copies of nothing (a deleted event's, or of an older version)

    @property
    def converged(self) -> bool:
        return self.lost == self.duplicated == self.extra == 0


def tally(store: StoreState) -> Tally:
    expected: Counter[Key] = Counter()
    copies: Counter[Key] = Counter()
    with store.lock:
        for side, other in ((EXTERNAL, WIX), (WIX, EXTERNAL)):
            for remote in store.calendar(side).events().values():
                if remote.event is None:
                    continue
                if remote.marker is None:  # a person's: its copy belongs on the other side
                    expected[_key(other, remote.event)] += 1
                else:
                    copies[_key(side, remote.event)] += 1
    return Tally(
        expected=sum(expected.values()),
        lost=sum(1 for key in expected if copies[key] == 0),
        duplicated=sum(copies[key] - 1 for key in expected if copies[key] > 1),
        extra=sum(count for key, count in copies.items() if key not in expected),
    )
