"""The fields Wix's clients read (issue 19): a connection's `userId` and `appId`, and its
imported events' owner (`scheduleOwnerId`, `scheduleOwnerName`, the `userIds` filter), read
from the Wix sandbox's schedule by the worker's task, then served by the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from conftest import Queued, TenantKey, derive, seed_connection
from fastapi.testclient import TestClient
from harness.clock import days_ahead
from harness.pipeline import broker_context
from sqlalchemy import Engine, select
from test_api_events import RANGE, add_links, on, seen

from api.app import create_app
from api.external_calendars.schema import GOOGLE_ID
from config import Settings
from models import Connection, ExternalCalendar, Provider, Side, Tenant
from models.db import session_scope
from models.types import utcnow
from providers.base import SyncWindow
from providers.wix.account import WixApp
from sandbox.server import ServedApp, serve_in_thread
from sandbox.wix import WixState
from sandbox.wix import create_app as create_wix
from sync.event import ExternalCalendarOverrides
from tasks.context import WorkerContext
from tasks.enqueue import LEARN_OWNER, SET_OVERRIDES, SYNC_CALENDAR
from tasks.maintenance import dispatch_due
from tasks.overrides import write_overrides
from tasks.schedule_owner import learn_owner

V2 = "/bookings/v2/external-calendars"
ALICE_USER, BOB_USER = (
    "76570209-aaaa-4bbb-8ccc-000000000001",
    "76570209-aaaa-4bbb-8ccc-000000000002",
)


@dataclass
class Wix:
    state: WixState
    served: ServedApp
    app_id: str
    instance_id: str


@pytest.fixture
def wix(engine: Engine, tenant: TenantKey) -> Iterator[Wix]:
    """The sandbox with calsync's app installed on the tenant's site."""
    state = WixState()
    app = state.add_app()
    with session_scope(engine) as db:
        row = db.get(Tenant, tenant.tenant_id)
        assert row is not None
        instance_id = row.wix_instance_id
    state.install(app.app_id, instance_id=instance_id)
    with serve_in_thread(create_wix(state)) as served:
        yield Wix(state, served, app.app_id, instance_id)
    state.close()


@pytest.fixture
def wix_settings(api_settings: Settings, wix: Wix) -> Settings:
    return derive(api_settings, wix_local_store_url=None, wix_app_id=wix.app_id,
                  wix_app_secret=wix.state.app(wix.app_id).secret,
                  wix_api_base_url=wix.served.base_url)  # fmt: skip


@pytest.fixture
def wix_context(wix_settings: Settings) -> Iterator[WorkerContext]:
    yield from broker_context(wix_settings)


@pytest.fixture
def wix_client(wix_settings: Settings, wix_context: WorkerContext) -> Iterator[TestClient]:
    app = create_app(wix_settings)
    app.state.gate = wix_context.gate
    with TestClient(app) as test_client:
        yield test_client


def staff(wix: Wix, name: str, user: str | None) -> str:
    return str(wix.state.add_schedule(wix.instance_id, name, owner_user_id=user)["id"])


def connection_of(client: TestClient, tenant: TenantKey, connection_id: str) -> dict[str, Any]:
    answer = client.get(f"{V2}/connections/{connection_id}", headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    connection: dict[str, Any] = answer.json()["connection"]
    return connection


def events(client: TestClient, tenant: TenantKey, **query: Any) -> list[dict[str, Any]]:
    answer = client.get(f"{V2}/events", params={**RANGE, **query}, headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def test_the_owner_is_read_from_the_schedule_and_filters_the_events(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    wix_client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    alice = seed_connection(engine, wix_settings, tenant, staff(wix, "Alice", ALICE_USER))
    bob = seed_connection(engine, wix_settings, tenant, staff(wix, "Bob", BOB_USER))
    add_links(
        engine,
        alice,
        "Home",
        [(Side.EXTERNAL, seen("Dentist", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00")))],
    )
    add_links(
        engine,
        bob,
        "Home",
        [(Side.EXTERNAL, seen("Gym", on(2, "07:00:00+00:00"), on(2, "08:00:00+00:00")))],
    )
    assert "userId" not in connection_of(wix_client, tenant, alice)  # not read yet
    assert not events(wix_client, tenant, userIds=ALICE_USER)

    assert learn_owner(wix_context, alice) == {"userId": ALICE_USER}
    assert learn_owner(wix_context, bob) == {"userId": BOB_USER}

    connection = connection_of(wix_client, tenant, alice)
    assert (connection["userId"], connection["appId"]) == (ALICE_USER, wix.app_id)
    mine = events(wix_client, tenant, userIds=ALICE_USER)
    assert [(e["start"][:10], e["scheduleOwnerId"]) for e in mine] == [(on(1), ALICE_USER)]
    assert "scheduleOwnerName" not in mine[0]  # personal: only with OWN_PI
    both = events(wix_client, tenant, userIds=[ALICE_USER, BOB_USER], fieldsets="OWN_PI")
    assert [(e["title"], e["scheduleOwnerName"]) for e in both] == [
        ("Dentist", "Alice"),
        ("Gym", "Bob"),
    ]
    assert not events(wix_client, tenant, userIds="someone-else")


def test_a_schedule_that_changes_hands_shows_its_new_owner(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    wix_client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    schedule = staff(wix, "Front desk", ALICE_USER)
    connection_id = seed_connection(engine, wix_settings, tenant, schedule)
    learn_owner(wix_context, connection_id)
    wix.state.schedules[schedule].owner_user_id = None  # its owner lost their Wix user

    assert learn_owner(wix_context, connection_id) == {"userId": None}
    assert "userId" not in connection_of(wix_client, tenant, connection_id)
    add_links(
        engine,
        connection_id,
        "Home",
        [(Side.EXTERNAL, seen("Lunch", on(1, "12:00:00+00:00"), on(1, "13:00:00+00:00")))],
    )
    listed = events(wix_client, tenant, fieldsets="OWN_PI")
    assert [(e.get("scheduleOwnerId"), e["scheduleOwnerName"]) for e in listed] == [
        (None, "Front desk")
    ]


def test_a_schedule_wix_does_not_know_leaves_the_owner_alone(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    tenant: TenantKey,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, wix_settings, tenant, "no-such-schedule")
    assert learn_owner(wix_context, connection_id) == {"error": "CALENDAR_DELETED"}


def test_without_a_wix_app_there_is_no_owner_to_read(
    engine: Engine, api_settings: Settings, context: WorkerContext, tenant: TenantKey,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)  # the local store plays Wix
    assert learn_owner(context, connection_id) == {"skipped": "no Wix app"}


ALIAS = "/bookings/v2/external-calendar"


def test_wix_alias_bindings_are_the_same_operations(
    engine: Engine, api_settings: Settings, client: TestClient, tenant: TenantKey,
    other: TenantKey,
) -> None:  # fmt: skip
    mine = seed_connection(engine, api_settings, tenant, "sched-1")
    theirs = seed_connection(engine, api_settings, other, "sched-2")
    add_links(
        engine,
        mine,
        "Home",
        [(Side.EXTERNAL, seen("Dentist", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00")))],
    )
    keyed = {"headers": tenant.headers}

    def same(alias: Any, primary: Any) -> dict[str, Any]:
        assert (alias.status_code, alias.json()) == (primary.status_code, primary.json())
        assert alias.headers["RateLimit-Limit"] == primary.headers["RateLimit-Limit"]
        answer: dict[str, Any] = alias.json()
        return answer

    same(client.get(f"{ALIAS}/providers", **keyed), client.get(f"{V2}/providers", **keyed))
    got = same(client.get(f"{ALIAS}/connections/{mine}", **keyed),
               client.get(f"{V2}/connections/{mine}", **keyed))  # fmt: skip
    assert got["connection"]["id"] == mine
    same(client.get(f"{ALIAS}/connections/{mine}/calendars", **keyed),
         client.get(f"{V2}/connections/{mine}/calendars", **keyed))  # fmt: skip
    listed = same(
        client.post(f"{ALIAS}/list-connections", json={"scheduleIds": ["sched-1"]}, **keyed),
        client.get(f"{V2}/connections", params={"scheduleIds": "sched-1"}, **keyed),
    )
    assert [c["id"] for c in listed["connections"]] == [mine]
    found = same(
        client.post(f"{ALIAS}/list-events", json={**RANGE, "fieldsets": ["OWN_PI"]}, **keyed),
        client.get(f"{V2}/events", params={**RANGE, "fieldsets": "OWN_PI"}, **keyed),
    )
    assert [e["title"] for e in found["events"]] == ["Dentist"]
    same(client.post(f"{ALIAS}/list-events", json={"from": RANGE["from"]}, **keyed),
         client.get(f"{V2}/events", params={"from": RANGE["from"]}, **keyed))  # fmt: skip

    # The same refusals: no key, another tenant's connection, input the operation refuses.
    assert client.get(f"{ALIAS}/connections/{mine}").status_code == 401
    same(client.get(f"{ALIAS}/connections/{theirs}", **keyed),
         client.get(f"{V2}/connections/{theirs}", **keyed))  # fmt: skip
    wrong = {"syncConfig": {"syncToCalendar": {"enabled": True, "calendar": {"id": "nope"}}}}
    refused = same(
        client.post(f"{ALIAS}/connections/{mine}/sync-config", json=wrong, **keyed),
        client.patch(f"{V2}/connections/{mine}/sync-config", json=wrong, **keyed),
    )
    assert refused["details"]["field"] == "syncConfig.syncToCalendar.calendar.id"
    same(client.post(f"{ALIAS}/connect-by-credentials", json={"scheduleId": "s"}, **keyed),
         client.post(f"{V2}/connections:connectByCredentials", json={"scheduleId": "s"},
                     **keyed))  # fmt: skip

    # And the same effects.
    busy = {"syncConfig": {"privacy": "BUSY_ONLY"}}
    changed = client.post(f"{ALIAS}/connections/{mine}/sync-config", json=busy, **keyed)
    assert changed.status_code == 200, changed.text
    assert connection_of(client, tenant, mine)["syncConfig"]["privacy"] == "BUSY_ONLY"
    oauth = {"providerId": GOOGLE_ID, "scheduleId": "sched-9",
             "redirectUrl": "https://studio.example/done"}  # fmt: skip
    consent = client.post(f"{ALIAS}/connect-by-oauth", json=oauth, **keyed)
    assert consent.status_code == 200 and consent.json()["oauthUrl"].startswith("http")
    ended = client.post(f"{ALIAS}/connections/{mine}/disconnect", **keyed)
    assert ended.status_code == 200 and ended.json()["connection"]["status"] == "DISCONNECTED"


def test_the_alias_bindings_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    wanted = {"/providers": "get", "/connect-by-oauth": "post",
              "/connect-by-credentials": "post", "/connections/{connectionId}": "get",
              "/list-connections": "post", "/connections/{connectionId}/calendars": "get",
              "/connections/{connectionId}/sync-config": "post",
              "/connections/{connectionId}/disconnect": "post", "/list-events": "post"}  # fmt: skip
    for path, method in wanted.items():
        assert set(paths[f"{ALIAS}{path}"]) == {method}, path
        assert "alias" in paths[f"{ALIAS}{path}"][method]["summary"]


def update(client: TestClient, tenant: TenantKey, connection_id: str, body: dict[str, Any]
           ) -> Any:  # fmt: skip
    return client.patch(f"{V2}/connections/{connection_id}/sync-config", json=body,
                        headers=tenant.headers)  # fmt: skip


def config_of(client: TestClient, tenant: TenantKey, connection_id: str) -> dict[str, Any]:
    config: dict[str, Any] = connection_of(client, tenant, connection_id)["syncConfig"]
    return config


def test_field_mask_changes_only_the_fields_it_names(
    engine: Engine, api_settings: Settings, client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    mine = seed_connection(engine, api_settings, tenant)
    before = config_of(client, tenant, mine)
    sent = {"privacy": "BUSY_ONLY", "blockAllDayEvents": True, "conflictPolicy": "WIX_WINS",
            "listEventFromCalendars": {"enabled": False}}  # fmt: skip

    answer = update(client, tenant, mine, {"syncConfig": sent, "fieldMask": {
        "paths": ["privacy", "syncConfig.blockAllDayEvents"]}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    after = answer.json()["connection"]["syncConfig"]
    assert (after["privacy"], after["blockAllDayEvents"]) == ("BUSY_ONLY", True)
    assert after["conflictPolicy"] == before["conflictPolicy"] == "ORIGIN_WINS"
    assert after["listEventFromCalendars"] == before["listEventFromCalendars"]
    assert after["listEventFromCalendars"]["enabled"] is True

    # A field named and left out takes its default; a member keeps the part's other members.
    answer = update(client, tenant, mine, {"syncConfig": {}, "fieldMask": {
        "paths": ["privacy", "listEventFromCalendars.enabled"]}})  # fmt: skip
    after = answer.json()["connection"]["syncConfig"]
    assert (after["privacy"], after["blockAllDayEvents"]) == ("FULL", True)
    assert after["listEventFromCalendars"] == {**before["listEventFromCalendars"],
                                               "enabled": False}  # fmt: skip
    answer = update(
        client,
        tenant,
        mine,
        {
            "syncConfig": {"listEventFromCalendars": {"enabled": True}},
            "fieldMask": {"paths": ["listEventFromCalendars.enabled"]},
        },
    )
    assert config_of(client, tenant, mine)["listEventFromCalendars"] == before[
        "listEventFromCalendars"]  # fmt: skip

    # No paths: every field given changes, as without a mask.
    answer = update(client, tenant, mine, {"syncConfig": {"conflictPolicy": "WIX_WINS"},
                                           "fieldMask": {"paths": []}})  # fmt: skip
    assert answer.json()["connection"]["syncConfig"]["conflictPolicy"] == "WIX_WINS"


def test_an_unknown_field_mask_path_is_refused_by_its_position(
    engine: Engine, api_settings: Settings, client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    mine = seed_connection(engine, api_settings, tenant)
    before = config_of(client, tenant, mine)
    for wrong in ("syncConfig.colour", "listEventFromCalendars.calendars.id", "syncConfig", ""):
        answer = update(
            client,
            tenant,
            mine,
            {"syncConfig": {"privacy": "BUSY_ONLY"}, "fieldMask": {"paths": ["privacy", wrong]}},
        )
        assert answer.status_code == 400, (wrong, answer.text)
        assert answer.json()["details"]["field"] == "fieldMask.paths[1]", wrong
        assert answer.json()["details"]["code"] == "INVALID_ARGUMENT"
    assert config_of(client, tenant, mine) == before


def test_each_full_reconciliation_asks_for_the_owner_again(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    tenant: TenantKey, queued: Queued,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, wix_settings, tenant, staff(wix, "Alice", ALICE_USER))
    now = utcnow()
    with session_scope(engine) as db:
        row = db.get(Connection, connection_id)
        assert row is not None
        row.next_reconcile_at = now - timedelta(minutes=1)
    assert (LEARN_OWNER, [connection_id]) not in queued("sync")
    dispatch_due(wix_context, now)
    assert (LEARN_OWNER, [connection_id]) in queued("sync")


def test_listed_events_carry_the_tag_their_wix_blocks_hold(
    engine: Engine, api_settings: Settings, client: TestClient, tenant: TenantKey,
) -> None:  # fmt: skip
    google = seed_connection(engine, api_settings, tenant, "sched-g", provider=Provider.GOOGLE,
                             server_url=None)  # fmt: skip
    caldav = seed_connection(engine, api_settings, tenant, "sched-c")
    add_links(
        engine,
        google,
        "Home",
        [(Side.EXTERNAL, seen("Dentist", on(1, "09:00:00+00:00"), on(1, "10:00:00+00:00")))],
    )
    add_links(
        engine,
        caldav,
        "Home",
        [(Side.EXTERNAL, seen("Gym", on(2, "07:00:00+00:00"), on(2, "08:00:00+00:00")))],
    )
    listed = events(client, tenant, fieldsets="OWN_PI")
    assert [(e["title"], e["tag"]) for e in listed] == [("Dentist", "google"), ("Gym", "caldav")]


def session(wix: Wix, schedule_id: str, title: str = "Massage") -> str:
    start = days_ahead(2, 10)
    body = {"scheduleId": schedule_id, "title": title, "timeZone": "UTC",
            "start": {"localDate": f"{start:%Y-%m-%dT%H:%M:%S}"},
            "end": {"localDate": f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}"}}  # fmt: skip
    return str(wix.state.create_event(wix.instance_id, body)["id"])


def put_overrides(client: TestClient, tenant: TenantKey, path: str, overrides: dict[str, Any]
                  ) -> Any:  # fmt: skip
    return client.put(
        f"{V2}/schedules/{path}/external-calendar-overrides",
        json={"externalCalendarOverrides": overrides},
        headers=tenant.headers,
    )


def test_overrides_are_handed_to_a_worker_for_a_connected_schedule_only(
    engine: Engine, api_settings: Settings, client: TestClient, tenant: TenantKey,
    other: TenantKey, queued: Queued,
) -> None:  # fmt: skip
    mine = seed_connection(engine, api_settings, tenant, "sched-1")
    seed_connection(engine, api_settings, other, "sched-2")
    answer = put_overrides(client, tenant, "sched-1", {"title": "Appointment"})
    assert (answer.status_code, answer.json()) == (
        202,
        {"externalCalendarOverrides": {"title": "Appointment"}},
    )
    answer = put_overrides(client, tenant, "sched-1/sessions/ev-1", {"description": "Room 2"})
    assert answer.status_code == 202, answer.text
    assert [args for name, args in queued("sync") if name == SET_OVERRIDES] == [
        [mine, None, {"title": "Appointment", "description": None}],
        [mine, "ev-1", {"title": None, "description": "Room 2"}],
    ]
    for path in ("sched-2", "sched-9", "sched-2/sessions/ev-1"):
        refused = put_overrides(client, tenant, path, {"title": "x"})
        assert refused.status_code == 404 and refused.json()["details"]["field"] == "scheduleId"
    too_long = put_overrides(client, tenant, "sched-1", {"title": "x" * 201})
    assert too_long.json()["details"]["field"] == "externalCalendarOverrides.title"
    assert len([name for name, _ in queued("sync") if name == SET_OVERRIDES]) == 2


def test_overrides_reach_wix_and_are_read_back_for_the_copies(
    engine: Engine, wix: Wix, wix_settings: Settings, wix_context: WorkerContext,
    tenant: TenantKey, queued: Queued,
) -> None:  # fmt: skip
    schedule = staff(wix, "Alice", ALICE_USER)
    elsewhere = staff(wix, "Bob", BOB_USER)
    connection_id = seed_connection(engine, wix_settings, tenant, schedule)
    with session_scope(engine) as db:
        home = db.scalars(
            select(ExternalCalendar).where(
                ExternalCalendar.connection_id == connection_id, ExternalCalendar.name == "Home"
            )
        ).one()
        home.export_target, home_id = True, home.id
    massage, facial = session(wix, schedule), session(wix, schedule, "Facial")
    theirs = session(wix, elsewhere)

    on_schedule = ExternalCalendarOverrides("Appointment", "Booked through the studio")
    assert write_overrides(wix_context, connection_id, None, on_schedule)["written"]
    on_session = ExternalCalendarOverrides(None, "Bring a towel")
    assert write_overrides(wix_context, connection_id, facial, on_session)["written"]
    refused = write_overrides(wix_context, connection_id, theirs, on_session)
    assert refused == {"error": "SESSION_NOT_FOUND"}

    assert wix.state.effective_overrides(wix.instance_id, massage) == {
        "title": "Appointment",
        "description": "Booked through the studio",
    }
    assert wix.state.effective_overrides(wix.instance_id, facial) == {
        "title": "Appointment",
        "description": "Bring a towel",
    }
    assert wix.state.effective_overrides(wix.instance_id, theirs) == {}
    assert [args for name, args in queued("sync") if name == SYNC_CALENDAR][-1][0] == home_id

    # What the sync reads from Wix for the copies: each session's effective overrides.
    app = WixApp.from_settings(wix_settings, wix_context.http)
    now = utcnow()
    listed = app.schedule(
        wix.instance_id, schedule, SyncWindow(now - timedelta(days=1), now + timedelta(days=30))
    )
    read = {item.id: item.overrides for item in listed.list_changes(None).changes}
    assert read[massage] == on_schedule
    assert read[facial] == ExternalCalendarOverrides("Appointment", "Bring a towel")

    cleared = write_overrides(wix_context, connection_id, None, ExternalCalendarOverrides())
    assert cleared["written"]
    assert wix.state.effective_overrides(wix.instance_id, massage) == {}
