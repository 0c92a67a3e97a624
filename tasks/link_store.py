"""Links in the database: `sync.Link` values in, `models.Link` rows out, one commit per wave.

Committing a wave's links as soon as its writes are back is the point: a worker killed after
a write keeps the record of it, so the next run sees the write as an echo instead of making
it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import Link as LinkRow
from models import Side as RowSide
from sync.codec import event_from_dict, event_to_dict, overrides_from_dict, overrides_to_dict
from sync.link import Link
from sync.relevance import listed_ids, own_keys, series_keys, unsettled
from sync.side import Side
from sync.snapshot import SideSnapshot


def to_link(row: LinkRow) -> Link:
    return Link(
        link_id=row.id,
        origin=Side(row.origin.value),
        base=event_from_dict(row.base),
        wix_id=row.wix_event_id,
        external_id=row.external_event_id,
        wix_version=row.wix_version,
        external_version=row.external_version,
        wix_seen=None if row.wix_seen is None else event_from_dict(row.wix_seen),
        external_seen=None if row.external_seen is None else event_from_dict(row.external_seen),
        wix_overrides=overrides_from_dict(row.wix_overrides),
        generation=row.generation,
        tombstone=row.tombstone,
    )


Keys = tuple[bool, str | None, str | None]


def _keys(link: Link) -> Keys:
    series = dict(series_keys(link))
    return unsettled(link), series.get(Side.WIX), series.get(Side.EXTERNAL)


def _row_keys(row: LinkRow) -> Keys:
    return row.unsettled, row.wix_series_id, row.external_series_id


def _set_keys(row: LinkRow, keys: Keys) -> None:
    row.unsettled, row.wix_series_id, row.external_series_id = keys


def _refresh(row: LinkRow, link: Link) -> None:
    keys = _keys(link)
    if _row_keys(row) != keys:
        _set_keys(row, keys)


def fill_row(row: LinkRow, link: Link) -> None:
    _set_keys(row, _keys(link))
    row.origin = RowSide(link.origin.value)
    row.base = event_to_dict(link.base)
    row.wix_event_id = link.wix_id
    row.external_event_id = link.external_id
    row.wix_version = link.wix_version
    row.external_version = link.external_version
    row.wix_seen = None if link.wix_seen is None else event_to_dict(link.wix_seen)
    row.external_seen = None if link.external_seen is None else event_to_dict(link.external_seen)
    row.wix_overrides = overrides_to_dict(link.wix_overrides)
    row.generation = link.generation
    row.tombstone = link.tombstone


class DatabaseLinkStore:
    """The links of one calendar; `session_factory` opens a short unit of work per save."""

    def __init__(
        self, session_factory: Callable[[], Session], connection_id: str, calendar_id: str
    ) -> None:
        self.session_factory = session_factory
        self.connection_id = connection_id
        self.calendar_id = calendar_id

    def all(self, refresh_keys: bool = False) -> list[Link]:
        """Every link of the calendar. `refresh_keys` (full runs) also rewrites the relevance
        keys of rows that disagree with their link: rows from before the keys were kept count
        as unsettled until a full run of their calendar reads them."""
        with self.session_factory() as db, db.begin():
            rows = db.scalars(select(LinkRow).where(LinkRow.calendar_id == self.calendar_id))
            links = []
            for row in rows:
                links.append(to_link(row))
                if refresh_keys:
                    _refresh(row, links[-1])
            return links

    def related(self, wix: SideSnapshot, external: SideSnapshot) -> list[Link]:
        """The links an incremental run must plan with (`sync.relevance.related`), read by
        the keys the rows keep: two queries, however many links the calendar has."""
        # The connection too, so the lookup by Wix id can use the (connection, wix id) index.
        mine = and_(LinkRow.connection_id == self.connection_id,
                    LinkRow.calendar_id == self.calendar_id)  # fmt: skip
        wix_ids, external_ids = listed_ids(wix), listed_ids(external)
        with self.session_factory() as db:
            first = [to_link(row) for row in db.scalars(select(LinkRow).where(mine, or_(
                LinkRow.unsettled.is_(True), LinkRow.wix_event_id.in_(wix_ids),
                LinkRow.external_event_id.in_(external_ids))))]  # fmt: skip
            series = frozenset().union(*map(own_keys, first))
            their_series = frozenset().union(*map(series_keys, first))
            more = [to_link(row) for row in db.scalars(select(LinkRow).where(mine, or_(
                LinkRow.wix_series_id.in_(_on(Side.WIX, series)),
                LinkRow.external_series_id.in_(_on(Side.EXTERNAL, series)),
                LinkRow.wix_event_id.in_(_on(Side.WIX, their_series)),
                LinkRow.external_event_id.in_(_on(Side.EXTERNAL, their_series)))))]  # fmt: skip
        chosen = {link.link_id for link in first}
        return first + [link for link in more if link.link_id not in chosen and (
            series_keys(link) & series or own_keys(link) & their_series)]  # fmt: skip

    def linked(self) -> dict[Side, int]:
        """How many events each side has linked, for the mass-deletion guard."""
        with self.session_factory() as db:
            wix, external = db.execute(
                select(func.count(LinkRow.wix_event_id), func.count(LinkRow.external_event_id))
                .where(LinkRow.calendar_id == self.calendar_id)
            ).one()  # fmt: skip
        return {Side.WIX: int(wix), Side.EXTERNAL: int(external)}

    def get(self, link_id: str) -> Link | None:
        with self.session_factory() as db:
            row = db.get(LinkRow, link_id)
            return None if row is None else to_link(row)

    def save_all(self, settled: Mapping[str, Link | None]) -> None:
        """One transaction for a wave's links: rows filled in, added, or deleted (None)."""
        with self.session_factory() as db, db.begin():
            rows = {row.id: row for row in db.scalars(
                select(LinkRow).where(LinkRow.id.in_(list(settled))))}  # fmt: skip
            for link_id, link in settled.items():
                row = rows.get(link_id)
                if link is None:
                    if row is not None:
                        db.delete(row)
                    continue
                if row is None:
                    row = LinkRow(id=link_id, connection_id=self.connection_id,
                                  calendar_id=self.calendar_id)  # fmt: skip
                    db.add(row)
                fill_row(row, link)


def _on(side: Side, keys: frozenset[tuple[Side, str]]) -> set[str]:
    return {event_id for key_side, event_id in keys if key_side is side}


class BeatingLinkStore:
    """A link store that also proves its holder is alive after each write (the calendar
    lock's heartbeat), so a holder that lost the lock stops before writing more."""

    def __init__(self, inner: DatabaseLinkStore, heartbeat: Callable[[], None]) -> None:
        self.inner, self.heartbeat = inner, heartbeat

    def get(self, link_id: str) -> Link | None:
        return self.inner.get(link_id)

    def save_all(self, settled: Mapping[str, Link | None]) -> None:
        self.inner.save_all(settled)
        self.heartbeat()
