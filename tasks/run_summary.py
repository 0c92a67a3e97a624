"""What a sync run did, for its record: the actions it planned and applied, counted by kind,
side, reason code and outcome, so an operator sees why a run wrote what it wrote without one
row per event (a first sync of a large calendar plans thousands of the same few kinds)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync.actions import Action, PlanResult, RemoveOrphan
from tasks.apply import Applied

Key = tuple[str, str, str, str]  # action, side, reason, outcome


@dataclass(frozen=True)
class RunReport:
    planned: int  # actions that leave a link behind, parked ones left out
    applied: int
    actions: list[dict[str, Any]]


def counts_towards_progress(action: Action) -> bool:
    """An action that settles a link: what the link store sees saved, wave by wave."""
    return not isinstance(action, RemoveOrphan)


def planned_actions(result: PlanResult, parked: Callable[[Action], bool]) -> int:
    return sum(counts_towards_progress(a) and not parked(a) for a in result.actions)


def report(result: PlanResult, applied: Applied, parked: Callable[[Action], bool]) -> RunReport:
    tally: Counter[Key] = Counter()
    tally.update(_key(action, "done") for action in applied.done)
    tally.update(_key(action, "failed") for action, _ in applied.failed)
    tally.update(_key(action, "parked") for action in result.actions if parked(action))
    tally.update(("Skip", s.side.value, s.reason.value, "skipped") for s in result.skipped)
    ordered = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    rows = [{"action": action, "side": side, "reason": reason, "outcome": outcome, "count": n}
            for (action, side, reason, outcome), n in ordered]  # fmt: skip
    done = sum(counts_towards_progress(a) for a in applied.done)
    return RunReport(planned_actions(result, parked), done, rows)


def _key(action: Action, outcome: str) -> Key:
    side = getattr(action, "side", None)
    return (type(action).__name__, "" if side is None else side.value, action.reason.value,
            outcome)  # fmt: skip
