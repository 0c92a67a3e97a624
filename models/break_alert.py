from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.enums import BreakReason, db_enum
from models.types import UTCDateTime


class BreakAlert(Timestamps, Base):
    """One break of a connection, told to its business once: by email and by webhook, each
    marked sent when it went out, so a retry of one never repeats the other."""

    __tablename__ = "break_alerts"
    __table_args__ = (UniqueConstraint("connection_id", "broken_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    broken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[BreakReason] = mapped_column(db_enum(BreakReason))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    webhook_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
