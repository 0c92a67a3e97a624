from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.types import PortableJSON, UTCDateTime

# The remote id the API gives an account's primary calendar until a worker learns the real one.
PRIMARY_PLACEHOLDER = "primary"


class ExternalCalendar(Timestamps, Base):
    """One calendar of a connection's account, with its incremental-sync cursor."""

    __tablename__ = "external_calendars"
    __table_args__ = (UniqueConstraint("connection_id", "remote_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    remote_id: Mapped[str] = mapped_column(String(1024))  # calendar id, href or Graph id
    name: Mapped[str | None] = mapped_column(String(500))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    import_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    export_target: Mapped[bool] = mapped_column(Boolean, default=False)
    # Sync token, delta link or sync-collection token; advanced only when a run completes.
    cursor: Mapped[str | None] = mapped_column(Text)
    # The Wix side's cursor for this calendar's pairs (sessions exported, blocks imported).
    wix_cursor: Mapped[str | None] = mapped_column(Text)
    cursor_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Events listed but not readable, by "side:event id" (`tasks.unreadable`): their copies stay.
    unreadable: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    # When a refresh of the account's calendars (`tasks.calendar_list`) last found this synced
    # calendar missing; its row and links stay, since the other side keeps its copies.
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @hybrid_property
    def synced(self) -> bool:
        """Whether the calendar syncs at all: it blocks time on the schedule or receives
        the sessions (also usable in queries)."""
        return self.import_enabled or self.export_target

    @synced.inplace.expression
    @classmethod
    def _synced_expression(cls) -> ColumnElement[bool]:
        return cls.import_enabled | cls.export_target
