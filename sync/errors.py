"""Errors the planner reports. They are returned in `PlanResult.errors`, not raised, so one
broken side cannot hide what the rest of the run did; a caller may raise them."""

from __future__ import annotations

from sync.side import Side


class SyncError(Exception):
    code = "SYNC_ERROR"
    flagged = False  # flagged errors need a person: the connection should show them


class MassDeletionSuspected(SyncError):
    code = "MASS_DELETE_GUARD"
    flagged = True

    def __init__(self, side: Side, linked: int, vanished: int) -> None:
        super().__init__(
            f"{vanished} of {linked} linked events vanished from the {side.value} side at once;"
            " nothing was planned from or to it"
        )
        self.side = side
        self.linked = linked
        self.vanished = vanished
