from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, new_id
from models.enums import RunStatus, db_enum
from models.types import PortableJSON, UTCDateTime, utcnow


class SyncRun(Base):
    """The record of one sync of one calendar: what triggered it, what it did, how long it took."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_calendar_started", "calendar_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    calendar_id: Mapped[str | None] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))  # incremental, full, poll
    trigger: Mapped[str] = mapped_column(String(40))  # webhook, reconcile, resync, ...
    status: Mapped[RunStatus] = mapped_column(db_enum(RunStatus), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    lag_ms: Mapped[int | None] = mapped_column(Integer)  # notification received -> applied
    error: Mapped[str | None] = mapped_column(Text)
    # Actions planned and applied so far (kept up to date while a large run goes on), and what
    # the run did: [{"action", "side", "reason", "outcome", "count"}] (`tasks.run_summary`).
    planned: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[int | None] = mapped_column(Integer)
    actions: Mapped[list[dict[str, Any]] | None] = mapped_column(PortableJSON)
