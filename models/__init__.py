"""SQLAlchemy models, the database session and Alembic migrations."""

from models.base import Base
from models.break_alert import BreakAlert
from models.calendar import PRIMARY_PLACEHOLDER, ExternalCalendar
from models.channel import PushChannel
from models.conflict import Conflict
from models.connection import Connection
from models.dead_letter import DeadLetter
from models.enums import (
    INACTIVE,
    BreakReason,
    ChannelStatus,
    ConflictStatus,
    ConnectionStatus,
    DeadLetterStatus,
    ErrorReason,
    InboxStatus,
    Provider,
    RunStatus,
    Side,
    TenantStatus,
)
from models.inbox import InboxItem
from models.link import Link
from models.sync_request import SyncRequest, SyncRequestStatus
from models.sync_run import SyncRun
from models.tenant import Tenant

__all__ = [
    "INACTIVE",
    "PRIMARY_PLACEHOLDER",
    "Base",
    "BreakAlert",
    "BreakReason",
    "ChannelStatus",
    "Conflict",
    "ConflictStatus",
    "Connection",
    "ConnectionStatus",
    "DeadLetter",
    "DeadLetterStatus",
    "ErrorReason",
    "ExternalCalendar",
    "InboxItem",
    "InboxStatus",
    "Link",
    "Provider",
    "PushChannel",
    "RunStatus",
    "Side",
    "SyncRequest",
    "SyncRequestStatus",
    "SyncRun",
    "Tenant",
    "TenantStatus",
]
