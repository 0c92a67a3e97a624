"""The sync engine: pure planning of what to write where. No I/O of any kind.

    result = plan(wix_snapshot, external_snapshot, links, policy)

Modules, one concern each: `event` (the canonical event and its hash), `mapping` (fields both
ways, privacy, what blocks time, what flows back), `link` (the record of a synced pair),
`policy` (per-connection options and conflict policies), `merge` (field-level three-way
merge), `snapshot` (what a side shows), `observe` (change detection), `planner` (`plan`),
`pair` / `deletions` / `arrivals` / `copies` (its decisions), `actions` and `reasons`
(its output), `errors`.
"""

from sync.actions import (
    Action,
    Create,
    Delete,
    ForgetLink,
    PlanResult,
    RemoveOrphan,
    SaveLink,
    Skipped,
    Update,
)
from sync.errors import MassDeletionSuspected, SyncError
from sync.event import (
    CanonicalEvent,
    EventStatus,
    ExternalCalendarOverrides,
    Recurrence,
    Transparency,
    content_hash,
)
from sync.link import Link, Marker, idempotency_key, link_id_for
from sync.merge import Conflict
from sync.planner import plan
from sync.policy import ConflictPolicy, ConnectionPolicy, MassDeleteGuard, Privacy
from sync.reasons import Reason
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot

__all__ = [
    "Action",
    "CanonicalEvent",
    "Conflict",
    "ConflictPolicy",
    "ConnectionPolicy",
    "Create",
    "Delete",
    "EventStatus",
    "ExternalCalendarOverrides",
    "ForgetLink",
    "Link",
    "Marker",
    "MassDeleteGuard",
    "MassDeletionSuspected",
    "PlanResult",
    "Privacy",
    "Reason",
    "Recurrence",
    "RemoteEvent",
    "RemoveOrphan",
    "SaveLink",
    "Side",
    "SideSnapshot",
    "Skipped",
    "SyncError",
    "Transparency",
    "Update",
    "content_hash",
    "idempotency_key",
    "link_id_for",
    "plan",
]
