"""Events no link knows: new ones are copied; our own copies are never imported back.

An unlinked event carrying our marker is a copy an earlier run made. If a create or recreate
in this plan claims it (same link id), it is adopted there. Otherwise it is an orphan: a second
copy of a linked event, or a copy whose source is gone (known only from a complete listing of
the source's side); orphans are removed, everything else is left alone.
"""

from __future__ import annotations

from sync.actions import RemoveOrphan
from sync.copies import create_copy
from sync.deletions import deletion_conflict
from sync.draft import Draft
from sync.event import EventStatus
from sync.link import Link, Marker, link_id_for
from sync.mapping import blocking_reason
from sync.observe import Present
from sync.reasons import Reason
from sync.side import Side
from sync.snapshot import RemoteEvent


def created_in(side: Side) -> Reason:
    return Reason.CREATED_IN_WIX if side is Side.WIX else Reason.CREATED_EXTERNALLY


def plan_arrival(draft: Draft, side: Side, item: RemoteEvent) -> None:
    event = item.event
    assert event is not None
    link_id = link_id_for(draft.policy.owner_id, side, item.id)
    link = Link(link_id, origin=side, base=event).observed(side, item)
    if draft.series_going(side, event):
        # A new exception of a series this plan deletes goes with it: say what was lost.
        kept = Present(item, event, changed=True, listed=True)
        reason = Reason.DELETE_WINS
        draft.conflicts.append(deletion_conflict(link, side.other, kept, reason, side.other))
        draft.skip(side, item.id, None, reason)
        return
    refusal = _refusal(draft, side, item)
    if refusal is not None:
        draft.skip(side, item.id, None, refusal)
        return
    create_copy(draft, link, item, created_in(side))


def _refusal(draft: Draft, side: Side, item: RemoteEvent) -> Reason | None:
    event = item.event
    assert event is not None
    if event.status is EventStatus.CANCELLED and not event.is_instance:
        return Reason.CANCELLED
    if side is Side.EXTERNAL:
        not_blocking = blocking_reason(event, draft.policy)
        if not_blocking is not None:
            return not_blocking
    refusal = draft.write_block(side.other)
    if refusal is not None:
        return refusal
    if draft.series_missing(side, event):
        return Reason.SERIES_NOT_LINKED
    return None


def plan_leftovers(draft: Draft, side: Side) -> None:
    """Unlinked events that are not new: others' copies, stray notices, our orphans."""
    unlinked = draft.unlinked[side]
    for item in unlinked.foreign:
        draft.skip(side, item.id, None, Reason.OWN_EVENT)
    for item in unlinked.deletions:
        draft.skip(side, item.id, None, Reason.UNKNOWN_DELETED)
    for item in unlinked.duplicates:
        _remove_orphan(draft, side, item)
    for link_id, item in sorted(unlinked.copies.items()):
        source_known_gone = draft.views[side.other].complete
        if link_id in draft.links or source_known_gone:
            _remove_orphan(draft, side, item)
        else:
            draft.skip(side, item.id, None, Reason.OWN_EVENT)


def _remove_orphan(draft: Draft, side: Side, item: RemoteEvent) -> None:
    refusal = draft.write_block(side)
    if refusal is not None:
        draft.skip(side, item.id, _link_of(draft, item), refusal)
        return
    draft.emit(RemoveOrphan(side, item.id, item.version, Reason.ORPHANED_COPY))


def _link_of(draft: Draft, item: RemoteEvent) -> Link | None:
    marker = Marker.parse(item.marker)
    return None if marker is None else draft.links.get(marker.link_id)
