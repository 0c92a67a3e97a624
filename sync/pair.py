"""Decisions for one linked pair: merge what both sides changed (deletions: `sync.deletions`).

Whose edits count: the origin's always. The copy's edits flow back only for reversible fields
(see `sync.mapping`) and only while the origin may be written; otherwise the copy is a mirror
and its edits are reverted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sync.actions import Delete, SaveLink
from sync.copies import update_side
from sync.deletions import (
    both_gone,
    copy_deleted,
    origin_deleted,
    swept_copy,
    swept_origin,
    without_copy,
)
from sync.draft import Draft
from sync.event import (
    CanonicalEvent,
    EventStatus,
    ExternalCalendarOverrides,
    Field,
    value_of,
    with_value,
)
from sync.link import Link
from sync.mapping import blocking_reason, reversible_fields
from sync.merge import Conflict, Edits, changed_fields, conflict_reason, merge, owed_fields
from sync.observe import Gone, Present
from sync.reasons import Reason
from sync.side import Side


def plan_link(draft: Draft, link: Link) -> None:
    origin = link.origin
    mine = draft.views[origin].observe(link)
    theirs = draft.views[origin.other].observe(link)
    if (
        isinstance(mine, Present)
        and isinstance(theirs, Present)
        and _untouched(draft, link, mine, theirs)
    ):
        _report_echoes(draft, link, mine, theirs)
        return
    if isinstance(mine, Present) and draft.series_going(origin, mine.event):
        swept_origin(draft, link, mine, theirs)
    elif isinstance(theirs, Present) and draft.series_going(origin.other, theirs.event):
        swept_copy(draft, link, mine, theirs)
    elif isinstance(mine, Present):
        if isinstance(theirs, Present):
            _both_present(draft, link, mine, theirs)
        elif isinstance(theirs, Gone):
            copy_deleted(draft, link, mine, theirs)
        else:
            without_copy(draft, link, mine)
    elif isinstance(theirs, Present):
        origin_deleted(draft, link, theirs)
    else:
        both_gone(draft, link)


def _untouched(draft: Draft, link: Link, mine: Present, theirs: Present) -> bool:
    """Neither incremental listing names the pair, or only the copy's side does, with the
    version and content the link recorded (the echo of calsync's own write), and the last run
    left it settled: planning it would repeat what the link records. This keeps an
    incremental run's cost in the size of the change, not of the calendar, nor of the echoes
    of a large first sync. (A policy change comes with a full run; an echo on the origin's
    side is planned, as it may show what the origin's server made of a merged edit.)"""
    if mine.listed or (theirs.listed and not _copy_echo(draft, link, theirs)):
        return False
    going = draft.series_going(link.origin, mine.event)
    going = going or draft.series_going(link.origin.other, theirs.event)
    return not going and not owed_fields(link.base, link.seen_on(link.origin))


def _copy_echo(draft: Draft, link: Link, theirs: Present) -> bool:
    side = link.origin.other
    if draft.views[side].complete or theirs.changed:
        return False
    version = theirs.remote.version
    return (
        version is not None
        and version == link.version_on(side)
        and (theirs.event == link.seen_on(side))
    )


def updated_in(side: Side) -> Reason:
    return Reason.UPDATED_IN_WIX if side is Side.WIX else Reason.UPDATED_EXTERNALLY


@dataclass(frozen=True)
class _Why:
    """What drove a pair's writes, to name the reason of each."""

    origin: Side
    conflicts: tuple[Conflict, ...]
    ours: bool  # the origin changed (its fields, or for a session its overrides)
    theirs: frozenset[Field]  # the copy's edits that flow back
    ignored: frozenset[Field]  # the copy's edits that do not
    origin_writable: bool

    def reason(self, target: Side) -> Reason:
        if self.conflicts:
            return conflict_reason(self.conflicts[0].winner)
        if self.ours and self.theirs:
            return Reason.MERGED
        if self.theirs if target is self.origin else self.ours:
            return updated_in(target.other)
        if target is not self.origin and self.ignored:
            if self.origin_writable:
                return Reason.REVERTED_DERIVED_FIELD
            return Reason.REVERTED_MIRROR
        return Reason.RESYNC

    @property
    def any_edit(self) -> bool:
        return bool(self.ours or self.theirs or self.ignored)


def _both_present(draft: Draft, link: Link, mine: Present, theirs: Present) -> None:
    origin, other = link.origin, link.origin.other
    overrides = mine.remote.overrides if origin is Side.WIX else None
    merged, why = _merge_pair(draft, link, mine, theirs, overrides)
    observed = link.observed(origin, mine.remote).observed(other, theirs.remote)
    planned = replace(observed, base=merged)
    draft.remember(planned)
    skips_before = len(draft.skipped)
    # An edit is taken as settled only once both events were seen: a side absent from an
    # incremental listing may have been deleted or edited, and its change must still count.
    unseen = (mine.changed and not theirs.listed) or (theirs.changed and not mine.listed)
    not_blocking = origin is Side.EXTERNAL and blocking_reason(merged, draft.policy) is not None
    checkpoint = replace(link, base=merged) if unseen else planned
    if not_blocking and checkpoint != link and draft.write_block(Side.WIX) is None:
        # Save the merge result before removing the block: if the origin's update fails and
        # the run dies after the delete, the next run must still know why the block went.
        draft.emit(SaveLink(checkpoint, Reason.NO_LONGER_BLOCKING))

    wrote = update_side(draft, planned, origin, mine.remote, merged, None, why.reason(origin))
    if not_blocking:
        wrote = _remove_block(draft, planned, theirs) or wrote
    else:
        copy, series_link_id = draft.copy_for(origin, merged, overrides)
        if not _both_cancelled(copy, theirs.event):
            reason = why.reason(other)
            copied = update_side(draft, planned, other, theirs.remote, copy, series_link_id, reason)
            wrote = copied or wrote
    if not wrote and planned != link and not unseen:
        refusals = [s.reason for s in draft.skipped[skips_before:]]
        quiet = Reason.IN_SYNC if why.any_edit else Reason.ECHO
        draft.emit(SaveLink(planned, refusals[0] if refusals else quiet))
    _report_echoes(draft, link, mine, theirs)


def _merge_pair(
    draft: Draft,
    link: Link,
    mine: Present,
    theirs: Present,
    overrides: ExternalCalendarOverrides | None,
) -> tuple[CanonicalEvent, _Why]:
    origin, other = link.origin, link.origin.other
    origin_writable = draft.flows_to(origin)
    ours = changed_fields(mine.event, link.seen_on(origin)) if mine.changed else frozenset()
    edits = changed_fields(theirs.event, link.seen_on(other)) if theirs.changed else frozenset()
    shared = reversible_fields(origin, draft.policy, overrides) if origin_writable else set()
    counted = edits & shared
    owed = owed_fields(link.base, link.seen_on(origin))
    # The other side's edits: those seen now, and those an earlier run merged but never wrote.
    their_view = link.base
    for field in counted:
        their_view = with_value(their_view, field, value_of(theirs.event, field))
    modified = theirs.remote.modified if counted else None
    result = merge(
        link.link_id,
        origin,
        link.base,
        Edits(mine.event, ours, mine.remote.modified),
        Edits(their_view, counted | owed, modified),
        draft.policy,
    )
    draft.conflicts.extend(result.conflicts)
    overrides_changed = origin is Side.WIX and overrides != link.wix_overrides
    origin_changed = bool(ours) or overrides_changed
    why = _Why(origin, result.conflicts, origin_changed, counted, edits - counted, origin_writable)
    return result.event, why


def _both_cancelled(copy: CanonicalEvent, current: CanonicalEvent) -> bool:
    """A cancelled occurrence shows nothing, so its copy is right once it is cancelled too:
    where a calendar keeps only the date (CalDAV's EXDATE, Graph's missing instance), it
    reads back at its original slot with the series' fields, whatever the origin's were."""
    cancelled = EventStatus.CANCELLED
    return copy.is_instance and copy.status is cancelled and current.status is cancelled


def _remove_block(draft: Draft, planned: Link, block: Present) -> bool:
    """The external event became free or all-day: its busy block goes (a tombstone stays)."""
    refusal = draft.write_block(Side.WIX)
    if refusal is not None:
        draft.skip(Side.WIX, block.remote.id, planned, refusal)
        return False
    draft.emit(
        Delete(
            Side.WIX,
            block.remote.id,
            block.remote.version,
            planned,
            forget=False,
            reason=Reason.NO_LONGER_BLOCKING,
        )
    )
    return True


def _report_echoes(draft: Draft, link: Link, mine: Present, theirs: Present) -> None:
    """An unchanged event that was listed as a change (or with a new version) is an echo.
    Unchanged events of a complete listing are not worth a line each."""
    for side, item in ((link.origin, mine), (link.origin.other, theirs)):
        if not item.listed or item.changed:
            continue
        if not draft.views[side].complete or item.remote.version != link.version_on(side):
            draft.skip(side, item.remote.id, link, Reason.ECHO)
