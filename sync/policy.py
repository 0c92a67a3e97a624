"""Per-connection options: directions, privacy, what blocks time, conflicts, the deletion guard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sync.reasons import Reason
from sync.side import Side


class Privacy(StrEnum):
    FULL = "full"
    BUSY_ONLY = "busy_only"  # copies say "Busy": no description, no location


class ConflictPolicy(StrEnum):
    ORIGIN_WINS = "origin_wins"  # the side the event was born on
    WIX_WINS = "wix_wins"
    EXTERNAL_WINS = "external_wins"
    LATEST_WINS = "latest_wins"  # by modification time; within the clock skew, the origin


@dataclass(frozen=True)
class MassDeleteGuard:
    """A side that had at least `min_links` linked events and now lost all of them, or more
    than `max_share` of them at once, is more likely broken (revoked access, another calendar)
    than emptied on purpose."""

    min_links: int = 10
    max_share: float = 0.5

    def trips(self, linked: int, vanished: int) -> bool:
        if linked < self.min_links or vanished == 0:
            return False
        return vanished == linked or vanished / linked > self.max_share


@dataclass(frozen=True)
class ConnectionPolicy:
    # Whose copies these are: one synced calendar of a connection. Markers and link ids are
    # scoped by it, so the calendars of one connection never take each other's copies for
    # orphans, and one event id in two calendars names two links.
    owner_id: str
    tag: str  # what the external calendar's busy blocks carry on the Wix schedule: its system
    import_enabled: bool = True  # external -> Wix
    export_enabled: bool = True  # Wix -> external
    read_only: bool = False  # the external calendar may not be written at all
    privacy: Privacy = Privacy.FULL
    block_all_day: bool = False
    block_free: bool = False
    conflict_policy: ConflictPolicy = ConflictPolicy.ORIGIN_WINS
    clock_skew: timedelta = timedelta(seconds=5)
    mass_delete: MassDeleteGuard = MassDeleteGuard()

    def write_block(self, side: Side) -> Reason | None:
        """Why calsync may not write to `side`, or None when it may."""
        if side is Side.WIX:
            return None if self.import_enabled else Reason.IMPORT_DISABLED
        if self.read_only:
            return Reason.READ_ONLY
        return None if self.export_enabled else Reason.EXPORT_DISABLED


def conflict_winner(
    policy: ConnectionPolicy,
    origin: Side,
    wix_modified: datetime | None,
    external_modified: datetime | None,
) -> Side:
    """Which side's value survives a field both sides changed."""
    match policy.conflict_policy:
        case ConflictPolicy.WIX_WINS:
            return Side.WIX
        case ConflictPolicy.EXTERNAL_WINS:
            return Side.EXTERNAL
        case ConflictPolicy.LATEST_WINS:
            return _latest(policy.clock_skew, origin, wix_modified, external_modified)
    return origin


def _latest(skew: timedelta, origin: Side, wix: datetime | None, external: datetime | None) -> Side:
    # Two servers' clocks disagree a little; inside that margin "later" means nothing.
    if wix is None or external is None or abs(wix - external) <= skew:
        return origin
    return Side.WIX if wix > external else Side.EXTERNAL
