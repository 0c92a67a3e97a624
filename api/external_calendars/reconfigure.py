"""`PATCH connections/{id}/sync-config`: which calendars import, which one receives sessions.

The change is checked (provider features, the account's calendars), saved with the calendars'
`import_enabled` / `export_target` flags in one transaction, and then handed to a worker
(`tasks.reconfigure`): calendars dropped from import lose their Wix blocks, a
calendar that stops receiving sessions loses their copies, a dedicated calendar is made if
asked for, and every affected calendar gets a full sync.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.auth import CallerDep
from api.errors import conflict, precondition, responses
from api.external_calendars.catalog import of
from api.external_calendars.common import calendars_of, tenant_connection
from api.external_calendars.connections import get_connection
from api.external_calendars.ids import CONNECTION, ConnectionId
from api.external_calendars.schema import ConnectionResponse, UpdateSyncConfigRequest
from api.external_calendars.sync_config import POLICY_KEYS, Targets, masked, targets, updated
from api.handover import broker_down
from models import ConnectionStatus, ExternalCalendar
from models.db import session_scope
from tasks.enqueue import request_reconfigure

router = APIRouter()


@router.patch(
    f"{CONNECTION}/sync-config",
    summary="Update Sync Config",
    description="Only the parts given change (with `fieldMask`: only the fields it names). "
    "`listEventFromCalendars`: import from the primary "
    "calendar or from listed calendars; `syncToCalendar`: export to the primary calendar, a "
    "dedicated calendar calsync creates, or (calsync addition) one listed calendar.",
    response_model=ConnectionResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404, 409, 428, 503),
)
def update_sync_config(
    connection_id: ConnectionId, body: UpdateSyncConfigRequest, caller: CallerDep,
    request: Request,
) -> ConnectionResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        connection = tenant_connection(db, caller, connection_id, lock=True)
        if connection.status is ConnectionStatus.DISCONNECTED:
            raise conflict("the connection is disconnected", "connectionId", code="DISCONNECTED")
        entry = of(request.app.state.settings, connection.provider)
        if not entry.features.updateSyncConfig:
            raise precondition("this provider's sync configuration is fixed", "syncConfig")
        rows = calendars_of(db, connection_id)
        old = dict(connection.sync_config or {})
        mask = body.fieldMask.paths if body.fieldMask else []
        change_asked = masked(body.syncConfig, mask) if mask else body.syncConfig
        new = updated(old, change_asked, entry, rows)
        change = _changes(rows, targets(new, rows), _policy_changed(old, new))
        connection.sync_config = new
        unchanged = new == old
    if not unchanged and not request_reconfigure(
        connection_id, change["imports_lost"], change["exports_lost"], change["resync"],
        create_dedicated=change["create_dedicated"],
    ):  # fmt: skip
        raise broker_down()
    return get_connection(connection_id, caller, request)


def _policy_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(key) != new.get(key) for key in POLICY_KEYS)


def _changes(rows: list[ExternalCalendar], wanted: Targets, resync_all: bool) -> dict[str, Any]:
    """Set the rows' flags to `wanted`; say which calendars lost a direction (their copies are
    removed) and which need a full sync (those that gained one, or every synced calendar when
    the policy changed)."""
    imports_lost, exports_lost, resync = [], [], []
    for row in rows:
        importing, exporting = row.id in wanted.imports, row.id == wanted.export
        if row.import_enabled and not importing:
            imports_lost.append(row.id)
        if row.export_target and not exporting:
            exports_lost.append(row.id)
        gained = (importing and not row.import_enabled) or (exporting and not row.export_target)
        row.import_enabled, row.export_target = importing, exporting
        if gained or (resync_all and (importing or exporting)):
            resync.append(row.id)
    return {"imports_lost": imports_lost, "exports_lost": exports_lost, "resync": resync,
            "create_dedicated": wanted.needs_dedicated}  # fmt: skip
