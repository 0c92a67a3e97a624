from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.enums import DeadLetterStatus, db_enum
from models.types import PortableJSON, UTCDateTime


class DeadLetter(Timestamps, Base):
    """A change that keeps failing. After enough attempts it is parked: later runs skip it, so
    one bad event cannot block its calendar, until an operator retries it."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("calendar_id", "change_key"),
        Index("ix_dead_letters_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    calendar_id: Mapped[str] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE")
    )
    # Which change: the link it belongs to (or the source event id of a new one).
    change_key: Mapped[str] = mapped_column(String(300))
    action: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[DeadLetterStatus] = mapped_column(
        db_enum(DeadLetterStatus), default=DeadLetterStatus.FAILING
    )
    parked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def release(self, dead_letter_after: int) -> None:
        """An operator's retry: the next run tries the change again, and one more failure
        parks it again (a change still failing keeps the count it has)."""
        self.status = DeadLetterStatus.RETRYING
        self.attempts = min(self.attempts, max(0, dead_letter_after - 1))
