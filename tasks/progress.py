"""The progress of a large sync run (a first sync of a big calendar): its planned actions and
how many it has applied so far, on its row while it goes on, so the status page shows "x of y".

Kept cheap: a run with fewer actions than `SHOWN_FROM` is over before anyone looks and writes
nothing extra (its record gets the figures when it ends); a larger one writes its plan once and
then its count at most once a second, in a statement of its own after a wave's links are saved.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import update

from models import SyncRun
from sync.link import Link
from tasks.apply import LinkStore, Settled
from tasks.context import WorkerContext

SHOWN_FROM = 50
EVERY_SECONDS = 1.0


class RunProgress:
    def __init__(self, context: WorkerContext, run_id: str, planned: int) -> None:
        self.context, self.run_id = context, run_id
        self.shown = planned >= SHOWN_FROM
        self.applied, self.saved_at = 0, time.monotonic()
        if self.shown:
            self._save(planned=planned, progress=0)

    def advance(self, count: int) -> None:
        self.applied += count
        if self.shown and time.monotonic() - self.saved_at >= EVERY_SECONDS:
            self._save(progress=self.applied)

    def _save(self, **values: Any) -> None:
        with self.context.sessions() as db, db.begin():
            db.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(**values))
        self.saved_at = time.monotonic()


class CountingLinkStore:
    """A link store that reports each wave's saved links to the run's progress."""

    def __init__(self, inner: LinkStore, progress: RunProgress) -> None:
        self.inner, self.progress = inner, progress

    def get(self, link_id: str) -> Link | None:
        return self.inner.get(link_id)

    def save_all(self, settled: Settled) -> None:
        self.inner.save_all(settled)
        self.progress.advance(len(settled))
