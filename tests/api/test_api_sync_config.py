"""Update Sync Config: checks, the calendars' flags, and the work handed to a worker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Queued, TenantKey, seed_connection
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.external_calendars import sync_config as external_calendars_config
from config import Settings
from models import Connection, ExternalCalendar, Provider
from models.db import session_scope
from providers.base import CalendarInfo
from sync.policy import ConflictPolicy, Privacy
from tasks.policy import policy_for

V2 = "/bookings/v2/external-calendars"


def patch(client: TestClient, tenant: TenantKey, connection_id: str, config: dict[str, Any]
          ) -> httpx.Response:  # fmt: skip
    return client.patch(f"{V2}/connections/{connection_id}/sync-config", headers=tenant.headers,
                        json={"syncConfig": config})  # fmt: skip


def flags(engine: Engine, connection_id: str) -> dict[str, tuple[bool, bool, str]]:
    with session_scope(engine) as db:
        rows = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        return {row.name or "": (row.import_enabled, row.export_target, row.id) for row in rows}


def reconfigurations(queued: Queued) -> list[list[Any]]:
    return [args for task, args in queued("sync") if task == "tasks.connections.reconfigure"]


def test_choosing_calendars_sets_the_flags_and_hands_over_the_removals(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    before = flags(engine, connection_id)
    assert {n: f[:2] for n, f in before.items()} == {  # the primary calendar blocks time
        "Home": (True, False), "Work": (False, False), "Holidays": (False, False)}  # fmt: skip
    response = patch(client, tenant, connection_id, {
        "listEventFromCalendars": {"enabled": True, "calendars": {"calendars": [
            {"id": "/alice/work/"}]}},
        "syncToCalendar": {"enabled": True, "calendar": {"id": "/alice/work/"}},
    })  # fmt: skip
    assert response.status_code == 200, response.text
    config = response.json()["connection"]["syncConfig"]
    assert config["listEventFromCalendars"]["calendars"]["calendars"] == [
        {"id": "/alice/work/", "name": "Work"}
    ]
    assert config["syncToCalendar"] == {
        "enabled": True, "calendar": {"id": "/alice/work/", "name": "Work"}}  # fmt: skip
    after = flags(engine, connection_id)
    assert {n: f[:2] for n, f in after.items()} == {
        "Home": (False, False), "Work": (True, True), "Holidays": (False, False)}  # fmt: skip
    ids = {name: row[2] for name, row in after.items()}
    assert reconfigurations(queued) == [[connection_id, [ids["Home"]], [], [ids["Work"]], False]]

    # Dropping the export target: its copies go, and nothing needs a new run.
    patch(client, tenant, connection_id, {"syncToCalendar": {"enabled": False}})
    assert reconfigurations(queued)[-1] == [connection_id, [], [ids["Work"]], [], False]
    assert flags(engine, connection_id)["Work"][:2] == (True, False)


def test_a_dedicated_calendar_is_left_to_the_worker_to_make(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    ids = {name: row[2] for name, row in flags(engine, connection_id).items()}
    response = patch(client, tenant, connection_id, {
        "listEventFromCalendars": {"enabled": False},
        "syncToCalendar": {"enabled": True, "dedicatedCalendar": {}}})  # fmt: skip
    assert response.json()["connection"]["syncConfig"]["syncToCalendar"] == {
        "enabled": True, "dedicatedCalendar": {}}  # fmt: skip
    assert reconfigurations(queued) == [[connection_id, [ids["Home"]], [], [], True]]


def test_several_calendars_sync_up_to_the_limit(
    client: TestClient,
    tenant: TenantKey,
    engine: Engine,
    api_settings: Settings,
    queued: Queued,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    two = {"listEventFromCalendars": {"calendars": {"calendars": [
        {"id": "/alice/work/"}, {"id": "/alice/home/"}]}}}  # fmt: skip
    assert patch(client, tenant, connection_id, two).status_code == 200
    assert {n: f[:2] for n, f in flags(engine, connection_id).items()} == {
        "Home": (True, False), "Work": (True, False), "Holidays": (False, False)}  # fmt: skip

    monkeypatch.setattr(external_calendars_config, "MAX_SYNCED_CALENDARS", 2)
    third = {"syncToCalendar": {"enabled": True, "dedicatedCalendar": {}}}
    response = patch(client, tenant, connection_id, third)
    assert response.status_code == 428
    assert response.json()["details"]["field"] == "syncConfig"
    assert "at most 2 calendars" in response.json()["message"]
    assert len(reconfigurations(queued)) == 1  # the refused change handed nothing over


def test_privacy_and_conflict_policy_reach_the_sync_policy(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    response = patch(
        client,
        tenant,
        connection_id,
        {"privacy": "BUSY_ONLY", "conflictPolicy": "LATEST_WINS", "blockAllDayEvents": True},
    )
    config = response.json()["connection"]["syncConfig"]
    assert (config["privacy"], config["conflictPolicy"]) == ("BUSY_ONLY", "LATEST_WINS")
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        calendar = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id)).first()  # fmt: skip
        assert connection is not None and calendar is not None
        policy = policy_for(connection, calendar)
    assert policy.privacy is Privacy.BUSY_ONLY and policy.block_all_day
    assert policy.conflict_policy is ConflictPolicy.LATEST_WINS
    [args] = reconfigurations(queued)
    with session_scope(engine) as db:
        home = db.scalar(select(ExternalCalendar.id).where(ExternalCalendar.name == "Home"))
    assert args[3] == [home]  # a policy change resyncs every synced calendar


def test_bad_sync_configs_are_refused_and_change_nothing(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    before = flags(engine, connection_id)

    def refused(config: dict[str, Any]) -> tuple[int, str]:
        response = patch(client, tenant, connection_id, config)
        return response.status_code, response.json()["details"]["field"]

    both = {"listEventFromCalendars": {"enabled": True, "primaryCalendar": {},
                                       "calendars": {"calendars": []}}}  # fmt: skip
    assert refused(both) == (400, "syncConfig.listEventFromCalendars")
    unknown = {"listEventFromCalendars": {"calendars": {"calendars": [
        {"id": "/alice/work/"}, {"id": "/bob/secret/"}]}}}  # fmt: skip
    assert refused(unknown) == (400, "syncConfig.listEventFromCalendars.calendars.calendars[1].id")
    read_only = {"syncToCalendar": {"enabled": True, "calendar": {"id": "/alice/holidays/"}}}
    assert refused(read_only) == (400, "syncConfig.syncToCalendar.calendar.id")
    nothing_named = {"syncToCalendar": {"enabled": True}}
    assert refused(nothing_named) == (400, "syncConfig.syncToCalendar")
    assert refused({"privacy": "SECRET"}) == (400, "syncConfig.privacy")
    empty = client.patch(f"{V2}/connections/{connection_id}/sync-config", headers=tenant.headers,
                         json={})  # fmt: skip
    assert (empty.status_code, empty.json()["details"]["field"]) == (400, "syncConfig")
    assert flags(engine, connection_id) == before
    assert reconfigurations(queued) == []


def test_google_keeps_to_its_primary_calendar(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    primary = CalendarInfo("alice@example.com", "alice@example.com", False, primary=True)
    connection_id = seed_connection(engine, api_settings, tenant, provider=Provider.GOOGLE,
                                    calendars=(primary,), server_url=None)  # fmt: skip
    specific = patch(client, tenant, connection_id, {"listEventFromCalendars": {
        "calendars": {"calendars": [{"id": "alice@example.com"}]}}})  # fmt: skip
    assert specific.status_code == 428
    assert specific.json()["details"]["field"] == "syncConfig.listEventFromCalendars.calendars"
    dedicated = patch(client, tenant, connection_id,
                      {"syncToCalendar": {"dedicatedCalendar": {}}})  # fmt: skip
    assert dedicated.status_code == 428
    import_off = patch(
        client, tenant, connection_id, {"listEventFromCalendars": {"enabled": False}}
    )
    assert import_off.status_code == 200
    assert import_off.json()["connection"]["syncConfig"]["listEventFromCalendars"] == {
        "enabled": False, "primaryCalendar": {}}  # fmt: skip
    back_on = patch(client, tenant, connection_id, {"listEventFromCalendars": {"enabled": True}})
    assert back_on.json()["connection"]["syncConfig"]["listEventFromCalendars"]["enabled"]


def test_a_disconnected_connection_keeps_its_config(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    client.post(f"{V2}/connections/{connection_id}/disconnect", headers=tenant.headers)
    response = patch(client, tenant, connection_id, {"privacy": "BUSY_ONLY"})
    assert response.status_code == 409
    assert response.json()["details"] == {"code": "DISCONNECTED", "field": "connectionId"}
