"""Get, list, calendars, disconnect, resync and status; another tenant's connection is a 404."""

from __future__ import annotations

from datetime import timedelta

import httpx
from conftest import Queued, TenantKey, seed_connection
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from config import Settings
from models import (
    Conflict,
    Connection,
    ConnectionStatus,
    ErrorReason,
    ExternalCalendar,
    InboxItem,
    RunStatus,
    Side,
    SyncRun,
)
from models.db import session_scope
from models.types import utcnow

V2 = "/bookings/v2/external-calendars"


def calendar_ids(engine: Engine, connection_id: str) -> dict[str, str]:
    with session_scope(engine) as db:
        rows = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        return {row.name or "": row.id for row in rows}


def test_get_and_list_connections(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    first = seed_connection(engine, api_settings, tenant, "sched-1")
    second = seed_connection(engine, api_settings, tenant, "sched-2")
    seed_connection(engine, api_settings, other, "sched-9")
    got = client.get(f"{V2}/connections/{first}", headers=tenant.headers)
    assert got.status_code == 200
    assert got.json()["connection"]["scheduleId"] == "sched-1"
    listed = client.get(f"{V2}/connections", headers=tenant.headers).json()
    assert sorted(c["id"] for c in listed["connections"]) == sorted([first, second])
    assert "failedProviderIds" not in listed
    narrowed = client.get(
        f"{V2}/connections",
        headers=tenant.headers,
        params={"scheduleIds": ["sched-2", "sched-9"], "partialFailure": True},
    )
    assert [c["id"] for c in narrowed.json()["connections"]] == [second]
    assert narrowed.json()["failedProviderIds"] == []
    too_many = client.get(
        f"{V2}/connections",
        headers=tenant.headers,
        params={"scheduleIds": [f"s{i}" for i in range(101)]},
    )
    assert (too_many.status_code, too_many.json()["details"]["field"]) == (400, "scheduleIds")
    missing = client.get(f"{V2}/connections/nope", headers=tenant.headers)
    assert (missing.status_code, missing.json()["details"]["field"]) == (404, "connectionId")
    long_id = client.get(f"{V2}/connections/{'x' * 65}", headers=tenant.headers)
    assert (long_id.status_code, long_id.json()["details"]["field"]) == (400, "connectionId")


def test_the_connection_list_pages_by_cursor(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    made = [seed_connection(engine, api_settings, tenant, f"sched-{n}") for n in range(5)]
    seed_connection(engine, api_settings, other, "sched-9")
    wanted = ["sched-0", "sched-2", "sched-4"]
    seen, pages, params = [], [], {"cursorPaging.limit": 2, "scheduleIds": wanted}
    while True:
        page = client.get(f"{V2}/connections", headers=tenant.headers, params=params).json()
        seen += [c["id"] for c in page["connections"]]
        pages.append(page["pagingMetadata"]["count"])
        if not page["pagingMetadata"]["hasNext"]:
            break
        params = {"cursorPaging.cursor": page["pagingMetadata"]["cursors"]["next"]}
    assert pages == [2, 1]  # the cursor keeps the schedule filter: three of the five
    assert sorted(seen) == sorted(made[0::2]) and len(set(seen)) == 3
    listed = client.get(f"{V2}/connections", headers=tenant.headers).json()
    assert len(listed["connections"]) == 5 and listed["pagingMetadata"]["hasNext"] is False
    for bad in ({"cursorPaging.cursor": "bm90IGpzb24"}, {"cursorPaging.cursor": "W10"},
                {"cursorPaging.limit": 1001}):  # fmt: skip
        refused = client.get(f"{V2}/connections", headers=tenant.headers, params=bad)
        assert refused.status_code == 400
        assert refused.json()["details"]["field"] == next(iter(bad))


def test_connections_made_together_reconcile_spread_over_one_interval(
    tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    before = utcnow()
    made = [seed_connection(engine, api_settings, tenant, f"sched-{n}") for n in range(40)]
    interval = timedelta(seconds=api_settings.reconcile_interval)
    with session_scope(engine) as db:
        slots = [db.get(Connection, key).next_reconcile_at for key in made]  # type: ignore[union-attr]
    assert all(slot is not None and before <= slot <= utcnow() + interval for slot in slots)
    quarters = {int((slot - before) / interval * 4) for slot in slots}  # type: ignore[operator]
    assert quarters == {0, 1, 2, 3}  # not one instant: spread over the whole interval


def test_another_tenants_connection_is_not_found_anywhere(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    theirs = seed_connection(engine, api_settings, other, "sched-9")
    base = f"{V2}/connections/{theirs}"
    attempts = [
        client.get(base, headers=tenant.headers),
        client.get(f"{base}/calendars", headers=tenant.headers),
        client.get(f"{base}/status", headers=tenant.headers),
        client.patch(f"{base}/sync-config", headers=tenant.headers,
                     json={"syncConfig": {"privacy": "BUSY_ONLY"}}),
        client.post(f"{base}/disconnect", headers=tenant.headers),
        client.post(f"{base}:resync", headers=tenant.headers),
    ]  # fmt: skip
    for response in attempts:
        assert response.status_code == 404, response.request.url
        assert response.json()["details"] == {"code": "NOT_FOUND", "field": "connectionId"}
    listed = client.get(f"{V2}/connections", headers=tenant.headers,
                        params={"scheduleIds": "sched-9"})  # fmt: skip
    assert listed.json()["connections"] == []
    with session_scope(engine) as db:
        connection = db.get(Connection, theirs)
        assert connection is not None and connection.status is ConnectionStatus.CONNECTED
        assert connection.sync_config["privacy"] == "full"


def test_list_calendars(client: TestClient, tenant: TenantKey, engine: Engine,
                        api_settings: Settings) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    response = client.get(f"{V2}/connections/{connection_id}/calendars", headers=tenant.headers)
    assert response.json() == {"calendars": [
        {"id": "/alice/home/", "name": "Home", "primary": True, "readOnly": False},
        {"id": "/alice/holidays/", "name": "Holidays", "primary": False, "readOnly": True},
        {"id": "/alice/work/", "name": "Work", "primary": False, "readOnly": False},
    ]}  # fmt: skip


def test_disconnect_marks_at_once_and_hands_the_clean_up_to_a_worker(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    response = client.post(f"{V2}/connections/{connection_id}/disconnect", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["connection"]["status"] == "DISCONNECTED"
    again = client.post(f"{V2}/connections/{connection_id}/disconnect", headers=tenant.headers)
    assert again.status_code == 200  # repeats the clean-up of whatever is left
    assert queued("sync").count(("tasks.connections.disconnect", [connection_id])) == 2
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None and connection.next_reconcile_at is None
    refused = client.post(f"{V2}/connections/{connection_id}:resync", headers=tenant.headers)
    assert refused.status_code == 409 and refused.json()["details"]["code"] == "DISCONNECTED"
    # A disconnected schedule may be connected anew.
    seed_connection(engine, api_settings, tenant)


def test_resync_asks_for_full_runs_and_retries_a_connection_in_error(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        connection.status = ConnectionStatus.ERROR
        connection.error_reason = ErrorReason.EXTERNAL_CALENDAR_DELETED
    response = client.post(f"{V2}/connections/{connection_id}:resync", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["connection"]["status"] == "CONNECTED"
    ids = calendar_ids(engine, connection_id)
    syncs = {(args[0], args[1], args[2]) for task, args in queued("sync")
             if task == "tasks.calendar_sync.sync_calendar"}  # fmt: skip
    assert syncs == {(ids["Home"], "resync", True)}  # the one synced calendar


def test_status_reports_sync_health(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    ids = calendar_ids(engine, connection_id)
    now = utcnow()
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        connection.last_synced_at = now - timedelta(seconds=90)
        db.add(SyncRun(connection_id=connection_id, calendar_id=ids["Work"], kind="full",
                       trigger="connect", status=RunStatus.SUCCEEDED, started_at=now,
                       finished_at=now, created=3, lag_ms=850))  # fmt: skip
        db.add(SyncRun(connection_id=connection_id, calendar_id=ids["Home"], kind="incremental",
                       trigger="webhook", status=RunStatus.FAILED, started_at=now,
                       error="TransientError: 503"))  # fmt: skip
        db.add(Conflict(connection_id=connection_id, field="title", policy="origin_wins",
                        winner=Side.WIX))  # fmt: skip
        db.add(InboxItem(provider="local", idempotency_key="k1", calendar_id=ids["Work"]))
    response = client.get(f"{V2}/connections/{connection_id}/status", headers=tenant.headers)
    assert response.status_code == 200
    status = response.json()
    assert status["status"] == "CONNECTED" and status["lagMs"] == 850
    assert 85 <= status["secondsSinceLastSync"] <= 120
    assert (status["pendingChanges"], status["failedRuns24h"], status["openConflicts"],
            status["deadLetters"]) == (1, 1, 1, 0)  # fmt: skip
    runs = {c["name"]: c.get("lastRun") for c in status["calendars"]}
    assert runs["Work"]["created"] == 3 and runs["Home"]["error"] == "TransientError: 503"
    assert runs["Holidays"] is None and "cleanup" not in status


def test_unknown_ids_are_404_in_every_connection_route(client: TestClient, tenant: TenantKey
                                                        ) -> None:  # fmt: skip
    base = f"{V2}/connections/unknown-id"
    calls: list[httpx.Response] = [
        client.get(f"{base}/calendars", headers=tenant.headers),
        client.get(f"{base}/status", headers=tenant.headers),
        client.post(f"{base}/disconnect", headers=tenant.headers),
        client.post(f"{base}:resync", headers=tenant.headers),
    ]
    assert [r.status_code for r in calls] == [404, 404, 404, 404]
