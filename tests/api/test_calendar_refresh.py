"""List Calendars follows the account: `POST connections/{id}/calendars:refresh` hands the
refresh to a worker (`tasks.calendar_list`), which lists every calendar of the account (Google
sandbox, Graph sandbox, a real Radicale), adds the new ones syncing nothing, renames, removes
the ones gone that nothing ties calsync to, and keeps, marked, a synced one that is gone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import caldav
import pytest
from conftest import ALICE, Queued, TenantKey, seed_connection
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from test_api_microsoft import BACK, MICROSOFT_ID, graph, microsoft  # noqa: F401 (fixtures)
from test_api_oauth import ask, callback, consent

from config import Settings
from models import Connection, ConnectionStatus, ExternalCalendar, Link, Provider
from models.db import session_scope
from models.types import utcnow
from providers.caldav.account import CalDAVAccount
from sandbox.caldav_servers import CalDAVServer, start_radicale
from sandbox.google import GoogleState
from sandbox.graph.harness import GraphHarness
from sandbox.server import ServedApp
from sync.side import Side
from tasks.calendar_list import refresh
from tasks.context import WorkerContext
from tasks.enqueue import REFRESH_CALENDARS
from tasks.first_sync import start_syncing
from tasks.maintenance import dispatch_due

V2 = "/bookings/v2/external-calendars"
HOUR = timedelta(hours=1)


Listed = dict[str, tuple[bool, bool]]


def listed(client: TestClient, tenant: TenantKey, connection_id: str) -> Listed:
    """List Calendars, by name: (primary, readOnly)."""
    answer = client.get(f"{V2}/connections/{connection_id}/calendars", headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    return {c["name"]: (c["primary"], c["readOnly"]) for c in answer.json()["calendars"]}


def rows(engine: Engine, connection_id: str) -> dict[str, ExternalCalendar]:
    with session_scope(engine) as db:
        found = db.scalars(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        return {row.remote_id: row for row in found}


def import_from(client: TestClient, tenant: TenantKey, connection_id: str, *remote_ids: str
                ) -> None:  # fmt: skip
    config = {"listEventFromCalendars": {"calendars": {"calendars": [
        {"id": r} for r in remote_ids]}}}  # fmt: skip
    changed = client.patch(f"{V2}/connections/{connection_id}/sync-config",
                           headers=tenant.headers, json={"syncConfig": config})  # fmt: skip
    assert changed.status_code == 200, changed.text


def test_google_connects_its_primary_and_a_refresh_follows_the_whole_calendar_list(
    client: TestClient, tenant: TenantKey, engine: Engine, queued: Queued,
    context: WorkerContext, google: tuple[GoogleState, ServedApp],
) -> None:  # fmt: skip
    state = google[0]
    team = state.add_calendar(ALICE, summary="Team")
    state.add_account("bob@example.com")
    holidays = state.add_calendar("bob@example.com", summary="Holidays")
    state.share_calendar(holidays, ALICE, "reader")
    back = callback(client, consent(ask(client, tenant).json()["oauthUrl"]))
    connection_id = parse_qs(urlsplit(back.headers["location"]).query)["connectionId"][0]
    assert listed(client, tenant, connection_id) == {ALICE: (True, False)}  # the sign-in's

    answer = client.post(f"{V2}/connections/{connection_id}/calendars:refresh",
                         headers=tenant.headers)  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert [c["id"] for c in answer.json()["calendars"]] == [ALICE]  # as known before
    assert (REFRESH_CALENDARS, [connection_id]) in queued("sync")
    done = refresh(context, connection_id)  # what the worker does with it
    assert sorted(done["added"]) == sorted([team, holidays])
    assert listed(client, tenant, connection_id) == {
        ALICE: (True, False), "Team": (False, False), "Holidays": (False, True)}  # fmt: skip
    assert not any(r.synced for r in rows(engine, connection_id).values() if r.remote_id != ALICE)

    later = state.add_calendar(ALICE, summary="Later")
    state.rename_calendar(team, "Team A")
    done = refresh(context, connection_id)
    assert (done["added"], done["changed"]) == ([later], [team])
    assert listed(client, tenant, connection_id)["Team A"] == (False, False)

    state.delete_calendar(team)
    state.unsubscribe_calendar(ALICE, holidays)
    done = refresh(context, connection_id)  # Google syncs the primary only: nothing ties them
    assert (sorted(done["removed"]), done["gone"]) == (sorted([team, holidays]), [])
    assert set(rows(engine, connection_id)) == {ALICE, later}


def test_graph_lists_every_calendar_after_the_first_sync_and_a_refresh_follows_it(
    microsoft: tuple[TestClient, WorkerContext], graph: GraphHarness,  # noqa: F811
    tenant: TenantKey, engine: Engine,
) -> None:  # fmt: skip
    client, worker_side = microsoft
    user = graph.user.id
    team = graph.state.add_calendar(user, "Team", can_edit=False).id
    graph.state.add_calendar(user, "Old")
    spare = graph.state.add_calendar(user, "Spare").id
    asked = client.post(f"{V2}/connections:connectByOAuth", headers=tenant.headers, json={
        "scheduleId": "sched-ms", "providerId": MICROSOFT_ID, "redirectUrl": BACK})  # fmt: skip
    back = client.get("/oauth/microsoft/callback", params=graph.authorize(asked.json()["oauthUrl"]),
                      follow_redirects=False)  # fmt: skip
    connection_id = parse_qs(urlsplit(back.headers["location"]).query)["connectionId"][0]
    start_syncing(worker_side, connection_id)
    assert listed(client, tenant, connection_id) == {
        "Calendar": (True, False), "Team": (False, True), "Old": (False, False),
        "Spare": (False, False)}  # fmt: skip

    old = next(r for r in rows(engine, connection_id).values() if r.name == "Old")
    import_from(client, tenant, connection_id, old.remote_id)
    added = graph.state.add_calendar(user, "Later").id
    graph.state.set_calendar_access(user, added, can_edit=False)
    graph.state.rename_calendar(user, team, "Team A")
    graph.state.remove_calendar(user, old.remote_id)  # synced: its row and links stay, marked
    graph.state.remove_calendar(user, spare)  # synced nothing: its row goes
    done = refresh(worker_side, connection_id)
    assert (done["added"], done["changed"]) == ([added], [team])
    assert (done["removed"], done["gone"]) == ([spare], [old.remote_id])
    assert listed(client, tenant, connection_id) == {"Calendar": (True, False),
        "Team A": (False, True), "Old": (False, False), "Later": (False, True)}  # fmt: skip
    kept = rows(engine, connection_id)[old.remote_id]
    assert kept.gone_at is not None and kept.import_enabled
    assert refresh(worker_side, connection_id)["gone"] == [old.remote_id]  # still kept
    assert rows(engine, connection_id)[old.remote_id].gone_at == kept.gone_at


@pytest.fixture(scope="module")
def radicale() -> Iterator[CalDAVServer]:
    """A Radicale of its own, its user's home empty: the connection's user and password."""
    server = start_radicale({"alice": "pw"}, user="alice")
    yield server
    server.stop()


def test_caldav_lists_every_calendar_and_a_refresh_follows_the_server(
    client: TestClient, tenant: TenantKey, engine: Engine, context: WorkerContext,
    api_settings: Settings, radicale: CalDAVServer,
) -> None:  # fmt: skip
    principal = caldav.DAVClient(url=radicale.base_url, username="alice",
                                 password="pw").principal()  # fmt: skip
    made = {name: principal.make_calendar(name=name, cal_id=f"{name}-{uuid.uuid4().hex[:6]}")
            for name in ("Home", "Work", "Trips")}  # fmt: skip
    account = CalDAVAccount(radicale.base_url, "alice", "pw", allow_private=True)
    try:
        calendars = tuple(account.list_calendars())
    finally:
        account.close()
    assert {c.name for c in calendars} == {"Home", "Work", "Trips"}
    connection_id = seed_connection(engine, api_settings, tenant, "sched-dav", Provider.CALDAV,
                                    calendars, server_url=radicale.base_url)  # fmt: skip
    by_name = {r.name: r for r in rows(engine, connection_id).values()}
    import_from(client, tenant, connection_id, by_name["Work"].remote_id)

    principal.make_calendar(name="Later", cal_id=f"later-{uuid.uuid4().hex[:6]}")
    made["Work"].delete()
    made["Trips"].delete()
    done = refresh(context, connection_id)
    assert len(done["added"]) == 1
    assert (done["removed"], done["gone"]) == ([by_name["Trips"].remote_id],
                                               [by_name["Work"].remote_id])  # fmt: skip
    now = {r.name: r for r in rows(engine, connection_id).values()}
    assert set(now) == {"Home", "Work", "Later"} and now["Work"].gone_at is not None
    assert listed(client, tenant, connection_id).keys() == {"Home", "Work", "Later"}


def test_a_disconnected_connection_is_not_refreshed(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    queued: Queued,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        connection.status = ConnectionStatus.DISCONNECTED
    answer = client.post(f"{V2}/connections/{connection_id}/calendars:refresh",
                         headers=tenant.headers)  # fmt: skip
    assert answer.status_code == 409 and answer.json()["details"]["code"] == "DISCONNECTED"
    assert (REFRESH_CALENDARS, [connection_id]) not in queued("sync")
    unknown = client.post(f"{V2}/connections/nobody/calendars:refresh", headers=tenant.headers)
    assert unknown.status_code == 404


def test_each_full_reconciliation_refreshes_the_calendars_too(
    tenant: TenantKey, engine: Engine, api_settings: Settings, context: WorkerContext,
    queued: Queued,
) -> None:  # fmt: skip
    due = seed_connection(engine, api_settings, tenant, "sched-due")
    later = seed_connection(engine, api_settings, tenant, "sched-later")
    now = utcnow()
    with session_scope(engine) as db:
        for connection_id, when in ((due, now - timedelta(minutes=1)), (later, now + HOUR)):
            connection = db.get(Connection, connection_id)
            assert connection is not None
            connection.next_reconcile_at = when
    assert dispatch_due(context, now)["reconciled"] >= 1
    refreshes = [args for task, args in queued("sync") if task == REFRESH_CALENDARS]
    assert refreshes == [[due]]


def test_a_gone_calendar_with_live_copies_stays_though_it_no_longer_syncs(
    tenant: TenantKey, engine: Engine, context: WorkerContext, api_settings: Settings,
    radicale: CalDAVServer,
) -> None:  # fmt: skip
    """Copies left behind (a withdrawal that could not finish) tie calsync to a calendar; a
    tombstone does not: both its events are gone."""
    principal = caldav.DAVClient(url=radicale.base_url, username="alice",
                                 password="pw").principal()  # fmt: skip
    home = principal.make_calendar(name="Home", cal_id=f"home-{uuid.uuid4().hex[:6]}")
    account = CalDAVAccount(radicale.base_url, "alice", "pw", allow_private=True)
    try:
        calendars = tuple(c for c in account.list_calendars() if c.name == "Home")
    finally:
        account.close()
    connection_id = seed_connection(engine, api_settings, tenant, "sched-links", Provider.CALDAV,
                                    calendars, server_url=radicale.base_url)  # fmt: skip
    made = {name: principal.make_calendar(name=name, cal_id=f"{name}-{uuid.uuid4().hex[:6]}")
            for name in ("Copies", "Tombs")}  # fmt: skip
    refresh(context, connection_id)
    by_name = {r.name: r for r in rows(engine, connection_id).values()}
    with session_scope(engine) as db:
        for name, tombstone in (("Copies", False), ("Tombs", True)):
            db.add(Link(connection_id=connection_id, calendar_id=by_name[name].id,
                        wix_event_id=f"session-{name}", external_event_id=f"{name}.ics",
                        origin=Side.WIX, base={}, tombstone=tombstone))  # fmt: skip
    for calendar in made.values():
        calendar.delete()
    done = refresh(context, connection_id)
    assert (done["removed"], done["gone"]) == ([by_name["Tombs"].remote_id],
                                               [by_name["Copies"].remote_id])  # fmt: skip
    assert not rows(engine, connection_id)[by_name["Copies"].remote_id].synced
    home.delete()
