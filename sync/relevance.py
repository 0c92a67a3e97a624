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
through the keys below (`listed_ids`, `unsettled`, `series_keys`), which it keeps in columns.
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


def series_keys(link: Link) -> frozenset[tuple[Side, str]]:
    """For an occurrence's link: its series' id on each side, as the planner sees the pair
    when neither side lists it (what each side showed last, else the base)."""
    keys = set()
    for side in Side:
        if link.id_on(side) is None:
            continue
        rec = (link.seen_on(side) or link.base).recurrence
        if rec is not None and rec.series_id is not None:
            keys.add((side, rec.series_id))
    return frozenset(keys)


def own_keys(link: Link) -> frozenset[tuple[Side, str]]:
    """For a series' link: the keys its occurrences' links carry (`series_keys`), on both
    sides, as a person may add an exception to our copy of a series as well."""
    if link.base.is_instance:
        return frozenset()
    return frozenset((side, i) for side in Side if (i := link.id_on(side)) is not None)


def related(links: Iterable[Link], wix: SideSnapshot, external: SideSnapshot) -> list[Link]:
    every = list(links)
    ids = {Side.WIX: listed_ids(wix), Side.EXTERNAL: listed_ids(external)}
    first = [link for link in every
             if unsettled(link) or any(link.id_on(side) in ids[side] for side in Side)]  # fmt: skip
    series = frozenset().union(*map(own_keys, first))
    their_series = frozenset().union(*map(series_keys, first))
    chosen = {link.link_id for link in first}
    more = [link for link in every if link.link_id not in chosen
            and (series_keys(link) & series or own_keys(link) & their_series)]  # fmt: skip
    return first + more
