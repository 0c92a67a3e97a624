"""A connection that stops syncing until a person acts (reconnects, fixes access): one way to
mark it, with Wix's error reason; its business is told once per break (`tasks.breaks`)."""

from __future__ import annotations

import logging

from models import Connection, ConnectionStatus, ErrorReason
from providers.errors import PermanentError, PermanentReason
from tasks.breaks import announce, break_reason, open_break
from tasks.context import WorkerContext

log = logging.getLogger(__name__)

# How a provider's permanent refusal shows on the connection (Wix's errorReason values).
ERROR_REASONS = {
    PermanentReason.TOKEN_REVOKED: ErrorReason.TOKEN_REVOKED,
    PermanentReason.CALENDAR_DELETED: ErrorReason.EXTERNAL_CALENDAR_DELETED,
}


def reason_for(error: PermanentError, default: ErrorReason | None = None) -> ErrorReason | None:
    return ERROR_REASONS.get(error.reason, default)


def mark_failed(context: WorkerContext, connection_id: str, reason: ErrorReason | None,
                message: str) -> None:  # fmt: skip
    """ERROR with `reason`; a connection disconnected meanwhile stays as it is. Locked, so
    that of two workers refused at once only one opens the break."""
    with context.sessions() as db, db.begin():
        connection = db.get(Connection, connection_id, with_for_update=True)
        if connection is None or connection.status is ConnectionStatus.DISCONNECTED:
            return
        connection.status, connection.error_reason = ConnectionStatus.ERROR, reason
        connection.error_message = message[:2000]
        alert = open_break(db, connection, break_reason(reason))
    log.warning("connection needs attention", extra={
        "connection_id": connection_id, "reason": reason.value if reason else None})  # fmt: skip
    announce(alert)


def mark_refused(context: WorkerContext, connection_id: str, error: PermanentError,
                 default: ErrorReason | None = None) -> None:  # fmt: skip
    """ERROR because the provider refused for good."""
    mark_failed(context, connection_id, reason_for(error, default), str(error))
