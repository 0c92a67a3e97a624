"""Newest-first pages of a connection's records (sync runs, conflicts, dead letters), by time
and then id, so a row written between two requests neither repeats nor hides another. The
cursor carries the filter of the first request and where its page ended (`paging`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.external_calendars.paging import make_cursor, not_a_cursor, paging_metadata, read_cursor
from api.external_calendars.schema import PagingMetadata


@dataclass(frozen=True)
class Position:
    """Where a page starts: the filter it pages and the last row of the page before."""

    status: str | None = None
    after: tuple[datetime, str] | None = None


def position(cursor: str | None, status: str | None) -> Position:
    if cursor is None:
        return Position(status)
    body = read_cursor(cursor)
    try:
        moment, last_id = body["a"]
        kept = body.get("s")
        return Position(None if kept is None else str(kept),
                        (datetime.fromisoformat(moment), str(last_id)))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        raise not_a_cursor() from None


def page(db: Session, query: Select[Any], moment: InstrumentedAttribute[datetime],
         key: InstrumentedAttribute[str], at: Position, limit: int
         ) -> tuple[list[Any], PagingMetadata]:  # fmt: skip
    """One page of `query`'s rows, newest `moment` first (ties by `key`)."""
    if at.after is not None:
        since, last_id = at.after
        query = query.where(or_(moment < since, and_(moment == since, key > last_id)))
    rows = list(db.scalars(query.order_by(moment.desc(), key).limit(limit + 1)))
    shown, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = shown[-1]
        after = [getattr(last, moment.key).isoformat(), getattr(last, key.key)]
        next_cursor = make_cursor({"s": at.status, "a": after})
    return shown, paging_metadata(len(shown), next_cursor)
