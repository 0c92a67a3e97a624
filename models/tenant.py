from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, new_id
from models.crypto import EncryptedJSON
from models.enums import TenantStatus, db_enum


class Tenant(Timestamps, Base):
    """One Wix site that installed the app (one app instance)."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    wix_instance_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[TenantStatus] = mapped_column(db_enum(TenantStatus), default=TenantStatus.ACTIVE)
    # SHA-256 of the tenant's API key; the key itself is shown once and never stored.
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Who is told when a connection breaks (`tasks/alerts.py`): an email address and a webhook
    # whose deliveries are signed with a secret calsync made (shown once, encrypted at rest).
    alert_email: Mapped[str | None] = mapped_column(String(320))
    alert_webhook_url: Mapped[str | None] = mapped_column(String(2048))
    alert_webhook_secret: Mapped[str | None] = mapped_column(EncryptedJSON())
