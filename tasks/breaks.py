"""When a connection counts as broken, so that its business is told once per break.

A connection breaks when it is put in ERROR (a refusal for good, `tasks.failures`), or when
`CALSYNC_ALERT_AFTER_FAILED_RUNS` sync runs in a row fail while it still syncs (a provider down,
the mass-deletion guard stopping every run). Runs stopped by throttling do not count: they only
wait; nor do runs stopped by a refusal, which puts the connection in ERROR by itself.

The first of these opens a break (`Connection.broken_at`) and records one `BreakAlert`; while
the break lasts nothing more is recorded, however many retries and runs fail (a resync that
meets the same refusal included). The next run that goes through closes it, so a later break
is told again. Callers hold the connection's row lock, and announce only after their commit.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from config import Settings
from models import BreakAlert, BreakReason, Connection, ConnectionStatus, ErrorReason, RunStatus
from models.types import utcnow
from providers.errors import PermanentError, ProviderError, RateLimited
from tasks.enqueue import request_break_alert

log = logging.getLogger(__name__)


def open_break(db: Session, connection: Connection, reason: BreakReason) -> str | None:
    """The alert of a break beginning now; None when the connection is broken already."""
    if connection.broken_at is not None:
        return None
    connection.broken_at = utcnow()
    alert = BreakAlert(connection_id=connection.id, broken_at=connection.broken_at, reason=reason)
    db.add(alert)
    db.flush()
    return alert.id


def break_reason(reason: ErrorReason | None) -> BreakReason:
    """A connection's error reason as a break's (a refusal without one is just REFUSED)."""
    return BreakReason(reason.value) if reason is not None else BreakReason.REFUSED


def after_run(db: Session, connection: Connection, status: RunStatus,
              stopped: ProviderError | None, settings: Settings) -> str | None:  # fmt: skip
    """Count a finished run: one that went through ends the break, one failure too many
    begins one."""
    if status is RunStatus.SUCCEEDED:
        if connection.status is not ConnectionStatus.ERROR:
            connection.broken_at, connection.failed_runs = None, 0
        return None
    if isinstance(stopped, RateLimited | PermanentError):
        return None
    connection.failed_runs += 1
    if connection.failed_runs < settings.alert_after_failed_runs:
        return None
    return open_break(db, connection, BreakReason.REPEATED_FAILURES)


def announce(alert_id: str | None) -> None:
    if alert_id is not None and not request_break_alert(alert_id):
        log.warning("break alert not handed to the broker", extra={"alert_id": alert_id})
