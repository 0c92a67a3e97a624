from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.enums import InboxStatus, db_enum
from models.types import PortableJSON, UTCDateTime, utcnow

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class InboxItem(Base):
    """A received notification, recorded under its idempotency key before the HTTP answer."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("provider", "idempotency_key"),
        Index("ix_inbox_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))  # a `providers.registry` id, or "wix"
    idempotency_key: Mapped[str] = mapped_column(String(512))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    calendar_id: Mapped[str | None] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)
    status: Mapped[InboxStatus] = mapped_column(db_enum(InboxStatus), default=InboxStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
