"""Which consecutive actions of a plan may be sent to a provider at the same time.

Most of a first sync's time is round trips: a thousand sessions exported one PUT after another
wait a thousand times for the server. A provider that can take several writes at once says so
with its `write_concurrency`, or by taking a batch of writes in one request (`BatchWriter`).
Consecutive writes to such a side form a wave of at most that many, sent together; the plan's
order still holds between waves.

Only writes nothing orders join a wave: events outside any series (an occurrence needs its
series' id first, and some servers keep a series and its exceptions in one resource, where
two writes at once would only refuse each other), each link and each target event once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from providers.base import BatchWriter, CalendarProvider
from sync.actions import Action, Create, Delete, Update
from sync.side import Side

Parallel = Create | Update | Delete


def write_concurrency(provider: CalendarProvider) -> int:
    return max(1, provider.write_concurrency)


def wave_width(provider: CalendarProvider) -> int:
    """How many writes one wave to the provider holds: a batch, or what it takes at once."""
    if isinstance(provider, BatchWriter):
        return max(1, provider.batch_size)
    return write_concurrency(provider)


def waves(actions: Sequence[Action], providers: Mapping[Side, CalendarProvider]
          ) -> Iterator[list[Action]]:  # fmt: skip
    """The actions in order, grouped into waves that may each be sent at once."""
    wave: list[Action] = []
    for action in actions:
        if wave and _joins(wave, action, providers):
            wave.append(action)
            continue
        if wave:
            yield wave
        wave = [action]
    if wave:
        yield wave


def _joins(wave: list[Action], action: Action, providers: Mapping[Side, CalendarProvider]
           ) -> bool:  # fmt: skip
    first = wave[0]
    if not (_standalone(first) and _standalone(action)):
        return False
    assert isinstance(first, Parallel) and isinstance(action, Parallel)
    if action.side is not first.side or len(wave) >= wave_width(providers[action.side]):
        return False
    target = _target(action)
    return all(
        w.link_id != action.link_id and (target is None or _target(w) != target)
        for w in wave
        if isinstance(w, Parallel)
    )


def _standalone(action: Action) -> bool:
    """A write of an event outside any series."""
    if isinstance(action, Create | Update):
        return action.series_link_id is None and action.event.recurrence is None
    if isinstance(action, Delete):
        return action.link.base.recurrence is None
    return False


def _target(action: Parallel) -> str | None:
    return None if isinstance(action, Create) else action.target_id
