"""Domain enums; values are the strings Wix's External Calendars API uses where it has one."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum


class Provider(StrEnum):
    """The built-in calendar systems' ids (`providers.registry` has them all, plugins too)."""

    GOOGLE = "google"
    MICROSOFT = "microsoft"
    APPLE = "apple"
    CALDAV = "caldav"
    LOCAL = "local"  # calsync's own calendar store: tests, demo, benchmarks


class TenantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class ConnectionStatus(StrEnum):
    CONNECTED = "CONNECTED"
    SYNC_IN_PROGRESS = "SYNC_IN_PROGRESS"
    SYNCED = "SYNCED"
    DISCONNECTED = "DISCONNECTED"
    ERROR = "ERROR"


# A connection in these states neither syncs nor keeps push channels until a person acts.
INACTIVE = (ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR)


class ErrorReason(StrEnum):
    TOKEN_REVOKED = "TOKEN_REVOKED"
    EXTERNAL_CALENDAR_CREATION_FAILED = "EXTERNAL_CALENDAR_CREATION_FAILED"
    EXTERNAL_CALENDAR_DELETED = "EXTERNAL_CALENDAR_DELETED"


class BreakReason(StrEnum):
    """Why a connection broke, as its business is told (`BreakAlert`): a connection's
    `ErrorReason`, a refusal without one, or sync runs that keep failing while it still syncs."""

    TOKEN_REVOKED = "TOKEN_REVOKED"
    EXTERNAL_CALENDAR_CREATION_FAILED = "EXTERNAL_CALENDAR_CREATION_FAILED"
    EXTERNAL_CALENDAR_DELETED = "EXTERNAL_CALENDAR_DELETED"
    REFUSED = "REFUSED"
    REPEATED_FAILURES = "REPEATED_FAILURES"


class Side(StrEnum):
    WIX = "wix"
    EXTERNAL = "external"


class ChannelStatus(StrEnum):
    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"


class InboxStatus(StrEnum):
    RECEIVED = "RECEIVED"  # committed, not yet handed to the broker
    ENQUEUED = "ENQUEUED"
    DONE = "DONE"
    DEAD = "DEAD"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class DeadLetterStatus(StrEnum):
    FAILING = "FAILING"  # still retried by every run
    PARKED = "PARKED"  # skipped until an operator retries it
    RETRYING = "RETRYING"  # released by an operator; the next run tries again


class ConflictStatus(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"  # the winner is kept
    RESOLVING = "RESOLVING"  # the losing side's value is to be written to both sides
    RESOLVED = "RESOLVED"  # it is the agreed value now; the next run writes it
    SUPERSEDED = "SUPERSEDED"  # the field changed again, or the pair is gone: nothing to keep


def db_enum(enum: type[StrEnum]) -> Enum:
    """Stored as plain strings: adding a value never needs an ALTER TYPE."""
    return Enum(enum, native_enum=False, length=40, values_callable=lambda e: [m.value for m in e])
