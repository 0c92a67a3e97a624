"""List Sync Runs: a connection's runs newest first, a page at a time, with what each did;
another tenant's connection is a 404, a cursor this API never gave out a 400."""

from __future__ import annotations

from conftest import TenantKey, seed_connection
from fastapi.testclient import TestClient
from records import add_run, calendar_of
from sqlalchemy import Engine

from config import Settings
from models import RunStatus

V2 = "/bookings/v2/external-calendars"


def test_runs_come_newest_first_a_page_at_a_time(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    oldest = add_run(engine, connection_id, home, 30, kind="full", trigger="connect", created=7)
    newest = add_run(engine, connection_id, home, 1, updated=2, api_calls=4, duration_ms=850,
                     lag_ms=1200)  # fmt: skip
    failed = add_run(engine, connection_id, home, 10, status=RunStatus.FAILED, errors=1,
                     error="RateLimited: slow down")  # fmt: skip
    url = f"{V2}/connections/{connection_id}/sync-runs"

    first = client.get(url, headers=tenant.headers, params={"cursorPaging.limit": 2}).json()
    assert [r["id"] for r in first["syncRuns"]] == [newest, failed]
    assert first["pagingMetadata"]["hasNext"] is True
    latest = first["syncRuns"][0]
    assert latest["calendarId"] == "/alice/home/"
    assert (latest["kind"], latest["trigger"], latest["status"]) == ("incremental", "webhook",
                                                                     "SUCCEEDED")  # fmt: skip
    assert (latest["updated"], latest["apiCalls"], latest["durationMs"], latest["lagMs"]) == (
        2, 4, 850, 1200)  # fmt: skip
    assert first["syncRuns"][1]["error"] == "RateLimited: slow down"

    cursor = first["pagingMetadata"]["cursors"]["next"]
    rest = client.get(url, headers=tenant.headers, params={"cursorPaging.cursor": cursor}).json()
    assert [r["id"] for r in rest["syncRuns"]] == [oldest]
    assert rest["syncRuns"][0]["created"] == 7
    assert rest["pagingMetadata"] == {"count": 1, "cursors": {}, "hasNext": False}


def test_runs_of_another_tenant_or_a_bad_page_are_refused(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine,
    api_settings: Settings,
) -> None:  # fmt: skip
    theirs = seed_connection(engine, api_settings, other, "sched-9")
    add_run(engine, theirs, calendar_of(engine, theirs, "/alice/home/"), 1)
    hidden = client.get(f"{V2}/connections/{theirs}/sync-runs", headers=tenant.headers)
    assert hidden.status_code == 404
    assert hidden.json()["details"]["field"] == "connectionId"

    mine = seed_connection(engine, api_settings, tenant)
    url = f"{V2}/connections/{mine}/sync-runs"
    for params, field in (({"cursorPaging.cursor": "bm90LWpzb24"}, "cursorPaging.cursor"),
                          ({"cursorPaging.limit": 0}, "cursorPaging.limit")):  # fmt: skip
        refused = client.get(url, headers=tenant.headers, params=params)
        assert refused.status_code == 400, refused.text
        assert refused.json()["details"]["field"] == field
    assert client.get(url).status_code == 401
