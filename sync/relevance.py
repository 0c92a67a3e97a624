"""Which links an incremental run must plan with: planning it with every other link left out
gives the same plan, so its cost follows the change, not the calendar.

An incremental run reads what changed since its cursors. The planner skips a pair that neither
listing names, that the last run left settled and whose series is not going (`sync.pair`), so
only these links can lead to anything:

- those naming an event either side listed, or the series a listed occurrence belongs to
  (translating an occurrence, telling an occurrence of our own copy from a person's);
- unsettled ones: a write the origin is still owed, or a side without its event;
- the series of an occurrence among those, and the occurrences of a series among those (a
  series deleted takes them along).

`related` is the rule over links in memory; `tasks.link_store` asks the database the same
through the keys below (`listed_ids`, `unsettled`, `series_key`), which it keeps in columns.
The mass-deletion guard counts every link, so the caller passes how many each side has.
"""

from __future__ import annotations

from collections.abc import Iterable

from sync.link import Link
from sync.merge import owed_fields
from sync.side import Side
from sync.snapshot import SideSnapshot


def listed_ids(snapshot: SideSnapshot) -> frozenset[str]:
    """The events a side listed, and the series its listed occurrences belong to."""
    latest = snapshot.by_id()
    ids = set(latest)
    for item in latest.values():
        rec = item.event.recurrence if item.event is not None else None
        if rec is not None and rec.series_id is not None:
            ids.add(rec.series_id)
    return frozenset(ids)


def unsettled(link: Link) -> bool:
    """The planner must look at the pair even if nothing about it was listed."""
    if link.wix_id is None or link.external_id is None:
        return True
    return bool(owed_fields(link.base, link.seen_on(link.origin)))


def series_key(link: Link) -> tuple[Side, str] | None:
    """For an occurrence's link: its origin and its series' id there."""
    rec = link.base.recurrence
    if rec is None or rec.series_id is None:
        return None
    return link.origin, rec.series_id


def own_key(link: Link) -> tuple[Side, str] | None:
    """For a series' link: the key its occurrences' links carry (`series_key`)."""
    own_id = link.id_on(link.origin)
    if link.base.is_instance or own_id is None:
        return None
    return link.origin, own_id


def related(links: Iterable[Link], wix: SideSnapshot, external: SideSnapshot) -> list[Link]:
    every = list(links)
    ids = {Side.WIX: listed_ids(wix), Side.EXTERNAL: listed_ids(external)}
    first = [link for link in every
             if unsettled(link) or any(link.id_on(side) in ids[side] for side in Side)]  # fmt: skip
    series = {key for link in first if (key := own_key(link)) is not None}
    their_series = {key for link in first if (key := series_key(link)) is not None}
    chosen = {link.link_id for link in first}
    more = [link for link in every if link.link_id not in chosen
            and (series_key(link) in series or own_key(link) in their_series)]  # fmt: skip
    return first + more
