"""Links in the database: `sync.Link` values in, `models.Link` rows out, one commit per save.

Committing each save on its own is the point: a worker killed after a write keeps the record
of it, so the next run sees the write as an echo instead of making it again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Link as LinkRow
from models import Side as RowSide
from sync.codec import event_from_dict, event_to_dict, overrides_from_dict, overrides_to_dict
from sync.link import Link
from sync.side import Side


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


def fill_row(row: LinkRow, link: Link) -> None:
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

    def all(self) -> list[Link]:
        with self.session_factory() as db:
            rows = db.scalars(select(LinkRow).where(LinkRow.calendar_id == self.calendar_id))
            return [to_link(row) for row in rows]

    def get(self, link_id: str) -> Link | None:
        with self.session_factory() as db:
            row = db.get(LinkRow, link_id)
            return None if row is None else to_link(row)

    def save(self, link: Link) -> None:
        with self.session_factory() as db, db.begin():
            row = db.get(LinkRow, link.link_id)
            if row is None:
                row = LinkRow(
                    id=link.link_id, connection_id=self.connection_id, calendar_id=self.calendar_id
                )
                db.add(row)
            fill_row(row, link)

    def forget(self, link_id: str) -> None:
        with self.session_factory() as db, db.begin():
            row = db.get(LinkRow, link_id)
            if row is not None:
                db.delete(row)


class BeatingLinkStore:
    """A link store that also proves its holder is alive after each write (the calendar
    lock's heartbeat), so a holder that lost the lock stops before writing more."""

    def __init__(self, inner: DatabaseLinkStore, heartbeat: Callable[[], None]) -> None:
        self.inner, self.heartbeat = inner, heartbeat

    def get(self, link_id: str) -> Link | None:
        return self.inner.get(link_id)

    def save(self, link: Link) -> None:
        self.inner.save(link)
        self.heartbeat()

    def forget(self, link_id: str) -> None:
        self.inner.forget(link_id)
        self.heartbeat()
