from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.crypto import EncryptedJSON
from models.enums import ChannelStatus, db_enum
from models.types import UTCDateTime


class PushChannel(Timestamps, Base):
    """A Google watch channel or a Microsoft Graph subscription for one calendar."""

    __tablename__ = "push_channels"
    __table_args__ = (Index("ix_push_channels_renewal", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    calendar_id: Mapped[str] = mapped_column(
        ForeignKey("external_calendars.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(String(40))  # a `providers.registry` id
    channel_id: Mapped[str] = mapped_column(String(200), unique=True)
    resource_id: Mapped[str | None] = mapped_column(String(1024))
    # Google channel token or Graph clientState: proves a notification came from the provider.
    secret: Mapped[str | None] = mapped_column(EncryptedJSON())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[ChannelStatus] = mapped_column(
        db_enum(ChannelStatus), default=ChannelStatus.ACTIVE
    )
