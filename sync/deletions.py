"""Decisions for a linked pair when one of its events is gone (or goes with its series).

Deleted on one side, unchanged on the other: deleted on the other. A deleted origin wins over
an edited copy (recorded as a conflict). A deleted copy loses to an edited origin: the copy is
written again under the next generation (a fresh create key: some providers refuse to re-use
a deleted event's id). A deleted copy whose origin may not be written is restored: it was a
mirror. An instance follows its series: it is copied again when its series is, and it goes
when this plan deletes its series on its side.
"""

from __future__ import annotations

from dataclasses import replace

from sync.actions import Delete, ForgetLink, SaveLink
from sync.copies import create_copy, update_side
from sync.draft import Draft
from sync.event import CanonicalEvent
from sync.link import Link
from sync.mapping import blocking_reason
from sync.merge import DELETED, Conflict, Edits, changed_fields, merge, owed_fields
from sync.observe import Gone, Observation, Present
from sync.reasons import Reason
from sync.side import Side


def deleted_in(side: Side) -> Reason:
    return Reason.DELETED_IN_WIX if side is Side.WIX else Reason.DELETED_EXTERNALLY


def copy_deleted(draft: Draft, link: Link, mine: Present, gone: Gone) -> None:
    origin, other = link.origin, link.origin.other
    series = draft.series_of(origin, mine.event)
    if series is not None and series.link_id in draft.copy_planned:
        # Its series' copy comes back (the series' origin changed): so does the instance.
        reason = Reason.RECREATED_AFTER_DELETE
        if _recreate(draft, link, mine, reason):
            draft.conflicts.append(deletion_conflict(link, other, mine, reason, winner=origin))
        return
    if _copy_unwanted(draft, link, mine):
        # The copy should not exist (its origin stopped blocking time, or its series has no
        # copy): most likely our own delete whose reply a crash lost. Keep a tombstone.
        _recreate(draft, link, mine, Reason.RESYNC)
        return
    if mine.changed:
        refusal = draft.write_block(other)
        if refusal is not None:
            draft.skip(other, gone.event_id, link, refusal)  # the change stays pending
            return
        if _recreate(draft, link, mine, Reason.RECREATED_AFTER_DELETE):
            reason = Reason.RECREATED_AFTER_DELETE
            draft.conflicts.append(deletion_conflict(link, other, mine, reason, winner=origin))
        return
    refusal = draft.write_block(origin)
    if refusal is None:
        _delete(draft, link, origin, mine, deleted_in(other))
    elif not draft.flows_to(origin) and draft.write_block(other) is None:
        _recreate(draft, link, mine, Reason.RESTORED_MIRROR)
    else:
        draft.skip(origin, mine.remote.id, link, refusal)  # e.g. guarded: decided later


def without_copy(draft: Draft, link: Link, mine: Present) -> None:
    """A tombstone: the copy was removed on purpose; it returns if the origin qualifies."""
    refusal = draft.write_block(link.origin.other)
    if refusal is not None:
        draft.skip(link.origin, mine.remote.id, link, refusal)
        return
    reason = Reason.STARTED_BLOCKING if link.origin is Side.EXTERNAL else Reason.RESYNC
    _recreate(draft, link, mine, reason)


def origin_deleted(draft: Draft, link: Link, theirs: Present) -> None:
    origin, other = link.origin, link.origin.other
    refusal = draft.write_block(other)
    if refusal is not None:
        draft.skip(other, theirs.remote.id, link, refusal)
        return
    reason = deleted_in(origin)
    if _copy_edited(link, theirs):
        reason = Reason.DELETE_WINS
        draft.conflicts.append(deletion_conflict(link, origin, theirs, reason, winner=origin))
    _delete(draft, link, other, theirs, reason)


def both_gone(draft: Draft, link: Link) -> None:
    """Nothing left on either side. Edits of the copy the origin never received (owed by an
    earlier run) were lost to the origin's deletion: say so."""
    if owed_fields(link.base, link.seen_on(link.origin)):
        reason = Reason.DELETE_WINS
        draft.conflicts.append(deletion_conflict(link, link.origin, link.base, reason, link.origin))
    draft.removed.add(link.link_id)
    draft.emit(ForgetLink(link, Reason.DELETED_ON_BOTH))


def swept_origin(draft: Draft, link: Link, mine: Present, theirs: Observation) -> None:
    """The origin is an instance whose series this plan deletes: it goes along, and so does
    its copy; the edits either had are lost to that deletion, and recorded.
    Both are deleted explicitly (a missing one counts as done), so the outcome does not hang
    on the provider's cascade or on the series' own delete succeeding."""
    origin, other = link.origin, link.origin.other
    if mine.changed:
        draft.conflicts.append(
            deletion_conflict(link, other, mine, Reason.DELETE_WINS, winner=other)
        )
    copy = theirs if isinstance(theirs, Present) else None
    if copy is not None and _copy_edited(link, copy):
        draft.conflicts.append(
            deletion_conflict(link, origin, copy, Reason.DELETE_WINS, winner=origin)
        )
    _sweep(draft, link, origin, mine, forget=copy is None)
    if copy is not None:
        _sweep(draft, link, other, copy, forget=True)


def swept_copy(draft: Draft, link: Link, mine: Observation, theirs: Present) -> None:
    """The copy is an instance whose series' copy this plan deletes (for a reason on the
    origin's side): it goes along, and an edit it had is lost to that deletion. A live
    origin keeps a tombstone, to be copied again if its series is."""
    if _copy_edited(link, theirs):
        draft.conflicts.append(
            deletion_conflict(link, link.origin, theirs, Reason.DELETE_WINS, link.origin)
        )
    if isinstance(mine, Present):
        base = agreed(draft, link, mine)
        link = replace(link.observed(link.origin, mine.remote), base=base)
    _sweep(draft, link, link.origin.other, theirs, forget=not isinstance(mine, Present))


def _sweep(draft: Draft, link: Link, side: Side, item: Present, forget: bool) -> None:
    refusal = draft.write_block(side)
    if refusal is not None:
        draft.skip(side, item.remote.id, link, refusal)
        return
    if forget:
        draft.removed.add(link.link_id)
    reason = Reason.WITH_ITS_SERIES
    draft.emit(Delete(side, item.remote.id, item.remote.version, link, forget, reason))


def agreed(draft: Draft, link: Link, mine: Present, record: bool = True) -> CanonicalEvent:
    """The origin's event merged with what an earlier run owes it (see `owed_fields`)."""
    seen = link.seen_on(link.origin)
    ours = changed_fields(mine.event, seen) if mine.changed else frozenset()
    owed = owed_fields(link.base, seen)
    edits, pending = Edits(mine.event, ours, mine.remote.modified), Edits(link.base, owed)
    result = merge(link.link_id, link.origin, link.base, edits, pending, draft.policy)
    if record:
        draft.conflicts.extend(result.conflicts)
    return result.event


def _recreate(draft: Draft, link: Link, mine: Present, reason: Reason) -> bool:
    """Write the copy again under the next generation; True if a copy is planned."""
    origin, other = link.origin, link.origin.other
    target = agreed(draft, link, mine)
    seen = replace(link.observed(origin, mine.remote), base=target)
    not_blocking = blocking_reason(target, draft.policy) if origin is Side.EXTERNAL else None
    if not_blocking is not None or draft.series_missing(origin, mine.event):
        why = not_blocking or Reason.SERIES_NOT_LINKED
        stays = seen.without_copy(other)
        owed = update_side(draft, stays, origin, mine.remote, target, None, Reason.RESYNC)
        if not owed and stays != link:
            draft.emit(SaveLink(stays, why))
        if mine.listed:
            draft.skip(origin, mine.remote.id, link, why)
        return False
    fresh = replace(
        seen.with_side(other, None, None, None), generation=link.generation + 1, tombstone=False
    )
    update_side(draft, fresh, origin, mine.remote, target, None, Reason.RESYNC)
    create_copy(draft, fresh, replace(mine.remote, event=target), reason)
    return True


def _copy_unwanted(draft: Draft, link: Link, mine: Present) -> bool:
    if draft.series_missing(link.origin, mine.event):
        return True
    if link.origin is Side.WIX:
        return False
    return blocking_reason(agreed(draft, link, mine, record=False), draft.policy) is not None


def _copy_edited(link: Link, copy: Present) -> bool:
    """Edits of the copy the origin has not received: new ones, or owed by an earlier run."""
    return copy.changed or bool(owed_fields(link.base, link.seen_on(link.origin)))


def _delete(draft: Draft, link: Link, side: Side, item: Present, reason: Reason) -> None:
    draft.removed.add(link.link_id)
    draft.emit(Delete(side, item.remote.id, item.remote.version, link, forget=True, reason=reason))


def deletion_conflict(
    link: Link, deleted: Side, kept: Present | CanonicalEvent, reason: Reason, winner: Side
) -> Conflict:
    """An edit on one side met a deletion on the other; `winner` says which survived."""
    event = kept if isinstance(kept, CanonicalEvent) else kept.event
    values = {deleted: None, deleted.other: event}
    return Conflict(
        link_id=link.link_id,
        field=DELETED,
        wix_value=values[Side.WIX],
        external_value=values[Side.EXTERNAL],
        base_value=link.base,
        policy=None,
        winner=winner,
        reason=reason,
    )
