"""Taking calsync's copies back: when a calendar stops importing or stops receiving sessions,
and when its connection ends.

Every copy calsync made on the side is deleted, occurrences before their series (a series'
deletion may take its occurrences along, and their own deletes would then miss). Its link is
then forgotten, or kept as a tombstone: a block removed because import was switched off is
written anew, under a fresh key, if import is switched on again. The planner never does this
on its own: switching a direction off only stops writing that way.
"""

from __future__ import annotations

from collections.abc import Iterable

from sync.actions import Action, Delete, ForgetLink, PlanResult, SaveLink
from sync.link import Link
from sync.reasons import Reason
from sync.side import Side


def plan_withdrawal(links: Iterable[Link], side: Side, *, forget: bool, reason: Reason
                    ) -> PlanResult:  # fmt: skip
    """Delete each copy on `side`; the copy is calsync's, so no edit made to it is kept."""
    actions: list[Action] = []
    for link in copies_on(links, side):
        copy_id = link.id_on(side)
        if copy_id is not None:
            actions.append(Delete(side, copy_id, None, link, forget, reason))
        elif forget:
            actions.append(ForgetLink(link, reason))
        else:
            actions.append(SaveLink(link.without_copy(side), reason))
    return PlanResult(tuple(actions), (), (), ())


def plan_forgetting(links: Iterable[Link], side: Side, reason: Reason) -> PlanResult:
    """Forget the links of copies on `side` that could not be deleted (the account refuses):
    on disconnect nothing may act for the account any more, so they stay behind."""
    return PlanResult(tuple(ForgetLink(link, reason) for link in copies_on(links, side)),
                      (), (), ())  # fmt: skip


def copies_on(links: Iterable[Link], side: Side) -> list[Link]:
    """Links whose copy is on `side`, occurrences first."""
    mine = [link for link in links if link.origin.other is side]
    return sorted(mine, key=lambda link: (not link.base.is_instance, link.link_id))
