from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, new_id
from models.enums import ConflictStatus, Side, db_enum
from models.types import PortableJSON, UTCDateTime, utcnow


class Conflict(Base):
    """A field changed on both sides since the last sync, and how the policy decided it."""

    __tablename__ = "conflicts"
    __table_args__ = (Index("ix_conflicts_connection_status", "connection_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    link_id: Mapped[str | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"))
    sync_run_id: Mapped[str | None] = mapped_column(ForeignKey("sync_runs.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(40))
    base_value: Mapped[Any] = mapped_column(PortableJSON, nullable=True)
    wix_value: Mapped[Any] = mapped_column(PortableJSON, nullable=True)
    external_value: Mapped[Any] = mapped_column(PortableJSON, nullable=True)
    policy: Mapped[str] = mapped_column(String(20))
    winner: Mapped[Side] = mapped_column(db_enum(Side))
    status: Mapped[ConflictStatus] = mapped_column(
        db_enum(ConflictStatus), default=ConflictStatus.OPEN
    )
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
