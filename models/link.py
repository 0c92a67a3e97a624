from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.enums import Side, db_enum
from models.types import PortableJSON


class Link(Timestamps, Base):
    """The sync state of one pair: a Wix event and its counterpart in one external calendar."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("connection_id", "wix_event_id"),
        # External ids are unique per calendar, and a calendar belongs to one connection.
        UniqueConstraint("calendar_id", "external_event_id"),
        Index("ix_links_unsettled", "calendar_id", "unsettled"),
        Index("ix_links_wix_series", "calendar_id", "wix_series_id"),
        Index("ix_links_external_series", "calendar_id", "external_series_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    calendar_id: Mapped[str] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE")
    )
    wix_event_id: Mapped[str | None] = mapped_column(String(250))
    external_event_id: Mapped[str | None] = mapped_column(String(1024))
    origin: Mapped[Side] = mapped_column(db_enum(Side))
    wix_version: Mapped[str | None] = mapped_column(String(200))
    external_version: Mapped[str | None] = mapped_column(String(200))
    # Canonical fields at the last sync: the base of the three-way merge.
    base: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    # What each side showed when last seen (or written), to tell its own edits from echoes.
    wix_seen: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    external_seen: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    wix_overrides: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    tombstone: Mapped[bool] = mapped_column(Boolean, default=False)
    # What an incremental run loads links by (`sync.relevance`): a pair the planner must look
    # at even when nothing about it was listed, and an occurrence's series id on each side.
    unsettled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    wix_series_id: Mapped[str | None] = mapped_column(String(250))
    external_series_id: Mapped[str | None] = mapped_column(String(1024))
