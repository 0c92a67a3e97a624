"""A v1 sync request: the business asked a calendar owner (by email) to approve a Google sync."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from config import Settings
from models.base import Base, Timestamps, new_id
from models.enums import db_enum
from models.signing import derived_keys, sign, verify
from models.types import UTCDateTime


class SyncRequestStatus(StrEnum):
    PENDING = "PENDING"  # the approval email went (or is going) out; nobody approved yet
    APPROVED = "APPROVED"  # the owner approved; `connection_id` names the connection made
    CANCELLED = "CANCELLED"  # replaced by a newer request, or withdrawn by unsync


class SyncRequest(Timestamps, Base):
    __tablename__ = "sync_requests"
    __table_args__ = (Index("ix_sync_requests_tenant_resource", "tenant_id", "resource_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    resource_id: Mapped[str] = mapped_column(String(64))  # the Wix schedule to sync
    email: Mapped[str] = mapped_column(String(320))  # where the approval email goes
    calendar: Mapped[str] = mapped_column(String(20), default="GOOGLE")
    status: Mapped[SyncRequestStatus] = mapped_column(
        db_enum(SyncRequestStatus), default=SyncRequestStatus.PENDING
    )
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    email_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The account that approved, and when its owner confirmed it though it is not `email`'s.
    approved_by: Mapped[str | None] = mapped_column(String(320))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


APPROVAL_PURPOSE = "approval-link-v1"


def approval_token(settings: Settings, request_id: str) -> str:
    """The secret part of the approval link: the request's id, signed. Derived, not stored, so a
    mail task that runs twice sends the same link."""
    return f"{request_id}.{sign(derived_keys(settings, APPROVAL_PURPOSE)[0], request_id.encode())}"


def request_id_of(settings: Settings, token: str) -> str | None:
    """The sync request an approval token names, if calsync signed it."""
    request_id, _, signature = token.partition(".")
    if not request_id or len(token) > 200 or not request_id.isalnum():
        return None
    keys = derived_keys(settings, APPROVAL_PURPOSE)
    return request_id if verify(keys, request_id.encode(), signature) else None
