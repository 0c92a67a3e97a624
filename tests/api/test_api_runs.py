"""List Sync Runs: a connection's runs newest first, a page at a time, with what each did
(counted by action, side and reason code) and how far a large one has got; another tenant's
connection is a 404, a cursor this API never gave out a 400."""

from __future__ import annotations

import pytest
from conftest import TenantKey, seed_connection
from fastapi.testclient import TestClient
from records import add_run, calendar_of, store_pair
from sqlalchemy import Engine

from config import Settings
from models import RunStatus
from sandbox.server import ServedApp
from sandbox.store import StoreState
from tasks import progress
from tasks.context import WorkerContext
from tasks.progress import RunProgress
from tasks.runner import run_calendar

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


def test_a_run_records_what_it_did_by_action_and_reason(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    store: tuple[StoreState, ServedApp], context: WorkerContext,
) -> None:  # fmt: skip
    pair = store_pair(engine, api_settings, tenant, store)
    for hour in range(3):
        pair.person_adds("alice", f"Dentist {hour}", hour=hour)
    outcome = run_calendar(context, calendar_of(engine, pair.connection_id, "alice"), "connect",
                           full=True)  # fmt: skip
    assert outcome.applied == 3 and pair.titles("wix-s1") == ["Dentist 0", "Dentist 1",
                                                              "Dentist 2"]  # fmt: skip

    (run,) = client.get(f"{V2}/connections/{pair.connection_id}/sync-runs",
                        headers=tenant.headers).json()["syncRuns"]  # fmt: skip
    assert (run["planned"], run["progress"], run["created"]) == (3, 3, 3)
    assert run["actions"] == [{"action": "Create", "side": "wix", "reason": "CREATED_EXTERNALLY",
                               "outcome": "done", "count": 3}]  # fmt: skip


def test_a_large_run_shows_its_progress_while_it_goes_on(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    large = add_run(engine, connection_id, home, 1, kind="full", status=RunStatus.RUNNING,
                    finished_at=None)  # fmt: skip
    small = add_run(engine, connection_id, home, 2, kind="full", status=RunStatus.RUNNING,
                    finished_at=None)  # fmt: skip
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    RunProgress(context, large, progress.SHOWN_FROM + 70).advance(45)
    RunProgress(context, small, progress.SHOWN_FROM - 1).advance(45)  # over before anyone looks

    runs = client.get(f"{V2}/connections/{connection_id}/sync-runs",
                      headers=tenant.headers).json()["syncRuns"]  # fmt: skip
    shown = {run["id"]: (run.get("planned"), run.get("progress")) for run in runs}
    assert shown == {large: (progress.SHOWN_FROM + 70, 45), small: (None, None)}
