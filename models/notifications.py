"""The inbox: record a notification exactly once, find what still needs a worker, close it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, exists, false, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.calendar import PRIMARY_PLACEHOLDER, ExternalCalendar
from models.channel import PushChannel
from models.enums import ChannelStatus, InboxStatus
from models.inbox import InboxItem
from models.link import Link
from models.types import utcnow


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


def record_live(
    db: Connection, provider: str, key: str, channel_id: str, payload: dict[str, Any],
    event_id: str | None = None, version: str | None = None,
) -> tuple[int, InboxStatus] | None:
    """One statement: record the notice under its key if its channel still asks for work
    (active, not run out, its calendar's id known), as handed to the broker already, or as
    done when it reports a version calsync wrote itself. The new row's id and status; None for
    a duplicate or a channel that is not live."""
    now = utcnow()
    # Scoped by connection and calendar, so each id is looked up by its unique index rather
    # than by filtering the calendar's links.
    echo = (
        exists(select(Link.id).where(
            Link.connection_id == ExternalCalendar.connection_id,
            Link.calendar_id == PushChannel.calendar_id, or_(
                and_(Link.external_event_id == event_id, Link.external_version == version),
                and_(Link.wix_event_id == event_id, Link.wix_version == version))))
        if event_id and version else false()
    )  # fmt: skip
    status = case((echo, InboxStatus.DONE.value), else_=InboxStatus.ENQUEUED.value)
    source = (
        select(literal(provider), literal(key), PushChannel.calendar_id,
               literal(payload, InboxItem.payload.type), literal(0),
               literal(now, InboxItem.received_at.type), status,
               literal(now, InboxItem.enqueued_at.type))
        .join(ExternalCalendar, ExternalCalendar.id == PushChannel.calendar_id)
        .where(PushChannel.channel_id == channel_id,
               PushChannel.status == ChannelStatus.ACTIVE, PushChannel.expires_at > now,
               ExternalCalendar.remote_id != PRIMARY_PLACEHOLDER)
    )  # fmt: skip
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    columns = ["provider", "idempotency_key", "calendar_id", "payload", "attempts",
               "received_at", "status", "enqueued_at"]  # fmt: skip
    statement = (
        dialect.insert(InboxItem).from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["provider", "idempotency_key"])
        .returning(InboxItem.id, InboxItem.status)
    )  # fmt: skip
    row = db.execute(statement).first()
    return None if row is None else (int(row[0]), InboxStatus(row[1]))


def is_recorded(db: Connection | Session, provider: str, key: str) -> bool:
    query = select(InboxItem.id).where(InboxItem.provider == provider,
                                       InboxItem.idempotency_key == key)  # fmt: skip
    return db.execute(query).first() is not None


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
