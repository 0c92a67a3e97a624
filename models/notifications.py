"""The inbox: record a notification exactly once, find what still needs a worker, close it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from models.calendar import PRIMARY_PLACEHOLDER, ExternalCalendar
from models.channel import PushChannel
from models.enums import ChannelStatus, InboxStatus
from models.inbox import InboxItem
from models.link import Link
from models.types import utcnow


class Recorded(NamedTuple):
    item: int
    status: InboxStatus
    calendar_id: str


def record(
    db: Session,
    provider: str,
    key: str,
    calendar_id: str | None,
    payload: dict[str, Any] | None = None,
    tenant_id: str | None = None,
    done: bool = False,
) -> int | None:
    """Insert under the unique (provider, key); the new row's id, or None for a duplicate.
    `done`: nothing to do (an echo of our own write), kept only so a resend is a duplicate.
    Otherwise the row is recorded as handed to the broker, which the caller does next (if the
    broker refuses, `mark_received` hands the row to the sweeper)."""
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    statement = (
        dialect.insert(InboxItem)
        .values(
            provider=provider, idempotency_key=key, calendar_id=calendar_id, tenant_id=tenant_id,
            payload=payload or {}, attempts=0, received_at=now,
            status=InboxStatus.DONE if done else InboxStatus.ENQUEUED,
            enqueued_at=None if done else now,
        )
        .on_conflict_do_nothing(index_elements=["provider", "idempotency_key"])
        .returning(InboxItem.id)
    )  # fmt: skip
    return db.scalar(statement)


@dataclass(frozen=True)
class Arrival:
    """A genuine push notice to record: its key, the channel it came on, and the event and
    version it reports when the system says (so calsync's own echo is recorded as done)."""

    provider: str
    key: str
    channel_id: str
    payload: dict[str, Any]
    event_id: str | None = None
    version: str | None = None


def record_live(db: Connection, arrivals: Sequence[Arrival]) -> dict[tuple[str, str], Recorded]:
    """One statement for all: record each arrival under its key if its channel still asks for
    work (active, not run out, its calendar's id known), as handed to the broker already, or
    as done when it reports a version calsync wrote itself. Answers the new rows by (provider,
    key); an arrival missing from the answer is a duplicate or of a channel that is not live."""
    if not arrivals:
        return {}
    rows = [{"provider": a.provider, "key": a.key, "channel_id": a.channel_id,
             "payload": a.payload, "event_id": a.event_id, "version": a.version, "n": n}
            for n, a in enumerate(arrivals)]  # fmt: skip
    found = db.execute(_recording(db.dialect.name), {"arrivals": rows, "now": utcnow()})
    return {(row[0], row[1]): Recorded(int(row[2]), InboxStatus(row[3]), str(row[4]))
            for row in found}  # fmt: skip


@cache
def _recording(dialect: str) -> Any:
    """`record_live`'s statement, built once: its shape does not depend on how many arrive,
    because they come as one JSON array (`arrivals`) that the database unpacks into rows."""
    source, field = _arrivals(dialect == "postgresql")
    now = bindparam("now", type_=InboxItem.received_at.type)
    # Scoped by connection and calendar, so each id is looked up by its unique index rather
    # than by filtering the calendar's links. A notice without event and version is no echo.
    echo = exists(select(Link.id).where(
        Link.connection_id == ExternalCalendar.connection_id,
        Link.calendar_id == PushChannel.calendar_id, or_(
            and_(Link.external_event_id == field["event_id"],
                 Link.external_version == field["version"]),
            and_(Link.wix_event_id == field["event_id"],
                 Link.wix_version == field["version"]))))  # fmt: skip
    status = case((echo, InboxStatus.DONE.value), else_=InboxStatus.ENQUEUED.value)
    chosen = (
        select(field["provider"], field["key"], PushChannel.calendar_id, field["payload"],
               literal(0), now, status, now)
        .select_from(source)
        .join(PushChannel, PushChannel.channel_id == field["channel_id"])
        .join(ExternalCalendar, ExternalCalendar.id == PushChannel.calendar_id)
        .where(PushChannel.status == ChannelStatus.ACTIVE, PushChannel.expires_at > now,
               ExternalCalendar.remote_id != PRIMARY_PLACEHOLDER)
        .order_by(field["n"])  # rows are numbered in the order the notices came
    )  # fmt: skip
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    columns = ["provider", "idempotency_key", "calendar_id", "payload", "attempts",
               "received_at", "status", "enqueued_at"]  # fmt: skip
    return (
        insert(InboxItem).from_select(columns, chosen)
        .on_conflict_do_nothing(index_elements=["provider", "idempotency_key"])
        .returning(InboxItem.provider, InboxItem.idempotency_key, InboxItem.id,
                   InboxItem.status, InboxItem.calendar_id)
    )  # fmt: skip


def _arrivals(postgres: bool) -> tuple[FromClause, dict[str, ColumnElement[Any]]]:
    """The bound JSON array as rows, and each field as a column."""
    names = ("provider", "key", "channel_id", "payload", "event_id", "version", "n")
    if postgres:
        types = (Text, Text, Text, JSONB, Text, Text, Integer)
        rows = (func.jsonb_to_recordset(bindparam("arrivals", type_=JSONB))
                .table_valued(*(column(n, t) for n, t in zip(names, types, strict=True)))
                .render_derived(name="arrivals", with_types=True))  # fmt: skip
        return rows, {n: rows.c[n] for n in names}
    each = func.json_each(bindparam("arrivals", type_=JSON)).table_valued("value")
    each = each.alias("arrivals")
    return each, {n: func.json_extract(each.c.value, f"$.{n}") for n in names}


def recorded_keys(db: Connection, provider: str, keys: Sequence[str]) -> set[str]:
    """Which of the keys the inbox holds already."""
    query = select(InboxItem.idempotency_key).where(
        InboxItem.provider == provider, InboxItem.idempotency_key.in_(keys)
    )
    return set(db.scalars(query))


def mark_received(db: Session, item_ids: list[int]) -> None:
    """Rows recorded as handed to the broker that it did not take: the sweeper sends them."""
    if item_ids:
        db.execute(
            update(InboxItem)
            .where(InboxItem.id.in_(item_ids), InboxItem.status == InboxStatus.ENQUEUED)
            .values(status=InboxStatus.RECEIVED, enqueued_at=None)
        )


def mark_enqueued(db: Session, item_ids: list[int]) -> None:
    if item_ids:
        db.execute(
            update(InboxItem)
            .where(InboxItem.id.in_(item_ids), InboxItem.status == InboxStatus.RECEIVED)
            .values(status=InboxStatus.ENQUEUED, enqueued_at=utcnow())
        )


def unsent_calendars(
    db: Session, received_before: datetime, enqueued_before: datetime
) -> list[str]:
    """Calendars with notifications never handed to the broker, or handed over so long ago that
    the message must have been lost."""
    pending = (
        (InboxItem.status == InboxStatus.RECEIVED) & (InboxItem.received_at < received_before)
    ) | ((InboxItem.status == InboxStatus.ENQUEUED) & (InboxItem.enqueued_at < enqueued_before))
    rows = db.scalars(
        select(InboxItem.calendar_id).where(pending, InboxItem.calendar_id.is_not(None)).distinct()
    )
    return [calendar_id for calendar_id in rows if calendar_id]


def complete(db: Session, calendar_id: str, received_up_to: datetime) -> datetime | None:
    """Close the calendar's notifications that a finished run covered; returns the oldest one's
    arrival time (for the run's lag), or None if there were none."""
    open_items = (
        (InboxItem.calendar_id == calendar_id)
        & InboxItem.status.in_([InboxStatus.RECEIVED, InboxStatus.ENQUEUED])
        & (InboxItem.received_at <= received_up_to)
    )
    oldest = db.scalar(select(func.min(InboxItem.received_at)).where(open_items))
    db.execute(
        update(InboxItem).where(open_items).values(status=InboxStatus.DONE, processed_at=utcnow())
    )
    return oldest


def open_span(db: Session, calendar_id: str) -> tuple[datetime, datetime] | None:
    """Arrival times of the oldest and newest notification still waiting, if any."""
    oldest, newest = db.execute(
        select(func.min(InboxItem.received_at), func.max(InboxItem.received_at)).where(
            InboxItem.calendar_id == calendar_id,
            InboxItem.status.in_([InboxStatus.RECEIVED, InboxStatus.ENQUEUED]),
        )
    ).one()
    return None if oldest is None else (oldest, newest)


def has_open(db: Session, calendar_id: str) -> bool:
    """Whether any notification for the calendar still waits for a run to cover it."""
    query = select(InboxItem.id).where(
        InboxItem.calendar_id == calendar_id,
        InboxItem.status.in_([InboxStatus.RECEIVED, InboxStatus.ENQUEUED]),
    )
    return db.scalar(query.limit(1)) is not None


def close_echoes(db: Session, calendar_id: str) -> None:
    """Close open notifications that turned out to report our own writes: the echo can reach
    the webhook a moment before the write's link is saved."""
    rows = db.scalars(
        select(InboxItem)
        .where(
            InboxItem.calendar_id == calendar_id,
            InboxItem.status.in_([InboxStatus.RECEIVED, InboxStatus.ENQUEUED]),
        )
        .limit(1000)
    ).all()
    reported = {(r.payload or {}).get("event") for r in rows} - {None}
    if not reported:
        return
    links = db.execute(
        select(Link.wix_event_id, Link.wix_version, Link.external_event_id, Link.external_version)
        .where(Link.calendar_id == calendar_id)
        .where(or_(Link.wix_event_id.in_(reported), Link.external_event_id.in_(reported)))
    ).all()
    ours = {(w, wv) for w, wv, _, _ in links} | {(e, ev) for _, _, e, ev in links}
    for row in rows:
        payload = row.payload or {}
        reported_version = (payload.get("event"), payload.get("version"))
        if None not in reported_version and reported_version in ours:
            row.status, row.processed_at = InboxStatus.DONE, utcnow()
