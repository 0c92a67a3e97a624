from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.crypto import EncryptedJSON
from models.enums import ConnectionStatus, ErrorReason, db_enum
from models.types import PortableJSON, UTCDateTime


class Connection(Timestamps, Base):
    """A staff member's external calendar account linked to one Wix schedule."""

    __tablename__ = "connections"
    __table_args__ = (
        Index("ix_connections_tenant_schedule", "tenant_id", "schedule_id"),
        Index("ix_connections_due", "status", "next_reconcile_at"),
        Index("ix_connections_polls_due", "status", "next_poll_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))  # a `providers.registry` id
    schedule_id: Mapped[str] = mapped_column(String(64))
    # The schedule's owner as Wix names them (`tasks.schedule_owner`): their Wix user id and name.
    user_id: Mapped[str | None] = mapped_column(String(64))
    schedule_owner_name: Mapped[str | None] = mapped_column(String(200))
    external_account_email: Mapped[str | None] = mapped_column(String(320))
    server_url: Mapped[str | None] = mapped_column(String(2048))  # CalDAV only
    status: Mapped[ConnectionStatus] = mapped_column(
        db_enum(ConnectionStatus), default=ConnectionStatus.CONNECTED
    )
    error_reason: Mapped[ErrorReason | None] = mapped_column(db_enum(ErrorReason))
    error_message: Mapped[str | None] = mapped_column(Text)
    # OAuth tokens or the CalDAV password; encrypted at rest.
    credentials: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON())
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sync_config: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)
    next_reconcile_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Polled providers (CalDAV has no push) are also due for an incremental poll.
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Since when it is broken (in ERROR, or failing run after run), its business told once
    # (`models.break_alert`); cleared by the next run that goes through.
    broken_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
