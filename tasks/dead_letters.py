"""Changes that keep failing: counted per run, parked after N, skipped until retried.

Only the change's own failures count (a refused event, a write that keeps conflicting); a
throttled or unreachable provider is not the change's fault and counts for nothing.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from models import DeadLetter, DeadLetterStatus
from models.types import utcnow
from providers.errors import ProviderError, TransientError
from sync.actions import Action, RemoveOrphan
from tasks.context import WorkerContext
from tasks.enqueue import request_sync


def change_key(action: Action) -> str:
    if isinstance(action, RemoveOrphan):
        return f"orphan:{action.side.value}:{action.target_id}"
    return action.link_id


def describe(action: Action) -> dict[str, str]:
    described = {"kind": type(action).__name__, "key": change_key(action)}
    side = getattr(action, "side", None)
    if side is not None:
        described["side"] = side.value
    reason = getattr(action, "reason", None)
    if reason is not None:
        described["reason"] = reason.value
    return described


class DeadLetters:
    def __init__(self, context: WorkerContext, connection_id: str, calendar_id: str) -> None:
        self.context = context
        self.connection_id = connection_id
        self.calendar_id = calendar_id
        with context.sessions() as db:
            self.parked = set(
                db.scalars(
                    select(DeadLetter.change_key).where(
                        DeadLetter.calendar_id == calendar_id,
                        DeadLetter.status == DeadLetterStatus.PARKED,
                    )
                )
            )

    def is_parked(self, action: Action) -> bool:
        return change_key(action) in self.parked

    def record(self, action: Action, error: ProviderError) -> None:
        if isinstance(error, TransientError):
            return
        key, limit = change_key(action), self.context.settings.dead_letter_after
        with self.context.sessions() as db, db.begin():
            letter = db.scalar(
                select(DeadLetter).where(
                    DeadLetter.calendar_id == self.calendar_id, DeadLetter.change_key == key
                )
            )
            if letter is None:
                letter = DeadLetter(connection_id=self.connection_id, calendar_id=self.calendar_id,
                                    change_key=key, attempts=0)  # fmt: skip
                db.add(letter)
            letter.attempts += 1
            letter.action = describe(action)
            letter.error = f"{type(error).__name__}: {error}"[:2000]
            if letter.attempts >= limit:
                letter.status, letter.parked_at = DeadLetterStatus.PARKED, utcnow()
            else:
                letter.status = DeadLetterStatus.FAILING

    def clear_succeeded(self, done: list[Action]) -> None:
        keys = {change_key(action) for action in done}
        if not keys:
            return
        with self.context.sessions() as db, db.begin():
            db.execute(
                delete(DeadLetter).where(
                    DeadLetter.calendar_id == self.calendar_id, DeadLetter.change_key.in_(keys)
                )
            )


def list_letters(
    context: WorkerContext, status: DeadLetterStatus | None = None
) -> list[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.created_at)
    if status is not None:
        query = query.where(DeadLetter.status == status)
    with context.sessions() as db:
        return list(db.scalars(query))


def retry_letter(context: WorkerContext, letter_id: str) -> DeadLetter | None:
    """Release a parked change: the next run tries it once more (one more failure parks it
    again), and that run is requested now."""
    with context.sessions() as db, db.begin():
        letter = db.get(DeadLetter, letter_id)
        if letter is None:
            return None
        letter.release(context.settings.dead_letter_after)
        calendar_id = letter.calendar_id
    request_sync(context.gate, calendar_id, "retry", full=True)
    return letter
