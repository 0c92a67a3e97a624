"""Writing copies: create one (or adopt one an interrupted run already made), update one."""

from __future__ import annotations

from sync.actions import Create, SaveLink, Update
from sync.draft import Draft
from sync.event import CanonicalEvent, same_content, same_value, value_of
from sync.link import Link, idempotency_key
from sync.mapping import reversible_fields
from sync.merge import Conflict
from sync.reasons import Reason
from sync.side import Side
from sync.snapshot import RemoteEvent


def create_copy(draft: Draft, link: Link, origin_item: RemoteEvent, reason: Reason) -> None:
    """Plan the copy of the origin's event on the other side, under `link`'s generation."""
    assert origin_item.event is not None
    target = link.origin.other
    copy, series_link_id = draft.copy_for(link.origin, origin_item.event, origin_item.overrides)
    adopted = draft.claim(target, link.link_id)
    if adopted is not None:
        _adopt(draft, link, adopted, copy, series_link_id, origin_item)
        return
    draft.remember(link)
    draft.copy_planned.add(link.link_id)
    draft.emit(
        Create(
            side=target,
            link=link,
            event=copy,
            idempotency_key=idempotency_key(link.link_id, link.generation),
            marker=draft.marker(link.link_id),
            tag=draft.policy.tag if target is Side.WIX else None,
            series_link_id=series_link_id,
            reason=reason,
        )
    )


def update_side(
    draft: Draft,
    link: Link,
    side: Side,
    current: RemoteEvent,
    desired: CanonicalEvent,
    series_link_id: str | None,
    reason: Reason,
) -> bool:
    """Plan writing `desired` over `current` if they differ; True when an update is planned."""
    assert current.event is not None
    if same_content(desired, current.event):
        return False
    block = draft.write_block(side)
    if block is not None:
        draft.skip(side, current.id, link, block)
        return False
    draft.emit(Update(side, current.id, current.version, link, desired, series_link_id, reason))
    return True


def _adopt(
    draft: Draft,
    link: Link,
    adopted: RemoteEvent,
    copy: CanonicalEvent,
    series_link_id: str | None,
    origin_item: RemoteEvent,
) -> None:
    # Nobody knows what the copy looked like when it was made, so its differences cannot be
    # told apart from edits: the origin wins them, and edits of shared fields are recorded.
    target = link.origin.other
    linked = link.observed(target, adopted)
    draft.remember(linked)
    assert adopted.event is not None
    shared = reversible_fields(link.origin, draft.policy, origin_item.overrides)
    for field in sorted(shared):
        mine, theirs = value_of(copy, field), value_of(adopted.event, field)
        if not same_value(mine, theirs):
            values = {link.origin: mine, target: theirs}
            draft.conflicts.append(
                Conflict(
                    link_id=link.link_id,
                    field=field.value,
                    wix_value=values[Side.WIX],
                    external_value=values[Side.EXTERNAL],
                    base_value=None,
                    policy=None,
                    winner=link.origin,
                    reason=Reason.ADOPTED_COPY,
                )
            )
    if not update_side(draft, linked, target, adopted, copy, series_link_id, Reason.ADOPTED_COPY):
        draft.emit(SaveLink(linked, Reason.ADOPTED_COPY))
