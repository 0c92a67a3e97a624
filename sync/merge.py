"""Field-level three-way merge of one linked pair, and the conflicts it decides.

A field changed on one side comes from that side; a field changed on both sides to different
values is a conflict, decided by the connection's policy and recorded with both values; a field
changed on neither keeps the base (the last merge result).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sync.event import CanonicalEvent, Field, FieldValue, same_value, value_of, with_value
from sync.policy import ConflictPolicy, ConnectionPolicy, conflict_winner
from sync.reasons import Reason
from sync.side import Side

DELETED = "deleted"  # the `field` of a conflict between a deletion and an edit
ConflictValue = FieldValue | CanonicalEvent | None


@dataclass(frozen=True)
class Conflict:
    """A decision between two edits. For DELETED, the deleted side's value is None."""

    link_id: str
    field: str
    wix_value: ConflictValue
    external_value: ConflictValue
    base_value: ConflictValue
    policy: ConflictPolicy | None  # None when a fixed rule decided, not the connection's policy
    winner: Side
    reason: Reason

    def value_on(self, side: Side) -> ConflictValue:
        return self.wix_value if side is Side.WIX else self.external_value


@dataclass(frozen=True)
class Edits:
    """One side's current event, the fields it changed that count, and when it was modified."""

    event: CanonicalEvent
    changed: frozenset[Field]
    modified: datetime | None = None


@dataclass(frozen=True)
class MergeResult:
    event: CanonicalEvent  # in the origin's terms
    conflicts: tuple[Conflict, ...]


def changed_fields(now: CanonicalEvent, seen: CanonicalEvent | None) -> frozenset[Field]:
    if seen is None:
        return frozenset(Field)
    if now is seen or now.normal == seen.normal:
        return frozenset()
    return frozenset(f for f in Field if now.normal[f.value] != seen.normal[f.value])


def owed_fields(base: CanonicalEvent, origin_seen: CanonicalEvent | None) -> frozenset[Field]:
    """Fields the last merge took from the other side that the origin does not hold yet (a
    run stopped before writing them). They count as the other side's edits until written."""
    if origin_seen is None or origin_seen == base:  # the usual case, without normalising
        return frozenset()
    return changed_fields(base, origin_seen)


def conflict_reason(winner: Side) -> Reason:
    return Reason.CONFLICT_WIX_WINS if winner is Side.WIX else Reason.CONFLICT_EXTERNAL_WINS


def merge(
    link_id: str,
    origin: Side,
    base: CanonicalEvent,
    ours: Edits,
    theirs: Edits,
    policy: ConnectionPolicy,
) -> MergeResult:
    """Merge the origin's edits (`ours`) with the other side's (`theirs`) against `base`."""
    # The series identity and rule belong to the origin, and so does its owner's answer to an
    # invitation; they are not merged.
    event = replace(base, recurrence=ours.event.recurrence, declined=ours.event.declined)
    conflicts: list[Conflict] = []
    for field in Field:
        value, conflict = _merge_field(link_id, origin, field, base, ours, theirs, policy)
        event = with_value(event, field, value)
        if conflict is not None:
            conflicts.append(conflict)
    return MergeResult(event, tuple(conflicts))


def _merge_field(
    link_id: str,
    origin: Side,
    field: Field,
    base: CanonicalEvent,
    ours: Edits,
    theirs: Edits,
    policy: ConnectionPolicy,
) -> tuple[FieldValue, Conflict | None]:
    mine, other = value_of(ours.event, field), value_of(theirs.event, field)
    if field in ours.changed and field in theirs.changed and not same_value(mine, other):
        by_side = {origin: (ours, mine), origin.other: (theirs, other)}
        winner = conflict_winner(
            policy, origin, by_side[Side.WIX][0].modified, by_side[Side.EXTERNAL][0].modified
        )
        conflict = Conflict(
            link_id=link_id,
            field=field.value,
            wix_value=by_side[Side.WIX][1],
            external_value=by_side[Side.EXTERNAL][1],
            base_value=value_of(base, field),
            policy=policy.conflict_policy,
            winner=winner,
            reason=conflict_reason(winner),
        )
        return by_side[winner][1], conflict
    if field in theirs.changed:
        return other, None
    if field in ours.changed:
        return mine, None
    return value_of(base, field), None
