"""Conflicts: listed per connection (narrowed by status), read one by one with the run that
decided them, and resolved. Keeping the winner closes a conflict; keeping the other side has a
worker write that side's value to both calendars, which the last test watches happen on the
local store with a real worker."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Queued, TenantKey, seed_connection
from fastapi.testclient import TestClient
from harness.pipeline import Pair, broker_drained, event_body
from harness.processes import Launch, wait_until
from records import add_conflict, add_run, calendar_of, status_of, store_pair
from sqlalchemy import Engine

from config import Settings
from models import Conflict, ConflictStatus, Link, Side
from models.db import session_scope
from sandbox.server import ServedApp
from sandbox.store import StoreState
from tasks.context import WorkerContext
from tasks.resolution import keep_losing_value

V2 = "/bookings/v2/external-calendars"
RESOLVE = "tasks.connections.resolve_conflict"


def test_conflicts_are_listed_by_status_and_shown_with_their_run(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine,
    api_settings: Settings,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    run_id = add_run(engine, connection_id, calendar_of(engine, connection_id, "/alice/home/"),
                     2, kind="full", conflicts=1)  # fmt: skip
    open_one = add_conflict(engine, connection_id, sync_run_id=run_id)
    add_conflict(engine, connection_id, 5, status=ConflictStatus.ACKNOWLEDGED)
    url = f"{V2}/connections/{connection_id}/conflicts"

    assert len(client.get(url, headers=tenant.headers).json()["conflicts"]) == 2
    listed = client.get(url, headers=tenant.headers, params={"status": "OPEN"}).json()
    assert [c["id"] for c in listed["conflicts"]] == [open_one]
    detail = client.get(f"{V2}/conflicts/{open_one}", headers=tenant.headers).json()["conflict"]
    assert (detail["field"], detail["baseValue"], detail["wixValue"], detail["externalValue"]) == (
        "title", "Yoga", "Yoga (Wix)", "Yoga (Alice)")  # fmt: skip
    assert (detail["policy"], detail["winner"], detail["status"]) == ("ORIGIN_WINS", "WIX", "OPEN")
    assert detail["syncRun"]["id"] == run_id and detail["syncRun"]["kind"] == "full"

    bad = client.get(url, headers=tenant.headers, params={"status": "CLOSED"})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "status"
    theirs = add_conflict(engine, seed_connection(engine, api_settings, other, "sched-9"))
    for path in (f"{V2}/conflicts/{theirs}", f"{V2}/conflicts/{theirs}:resolve"):
        hidden = client.request("GET" if path.endswith(theirs) else "POST", path,
                                headers=tenant.headers, json={"keep": "WINNER"})  # fmt: skip
        assert hidden.status_code == 404 and hidden.json()["details"]["field"] == "conflictId"
    assert status_of(engine, Conflict, theirs) is ConflictStatus.OPEN


def test_keeping_the_winner_closes_the_conflict(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings, queued: Queued
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    conflict_id = add_conflict(engine, connection_id)
    url = f"{V2}/conflicts/{conflict_id}:resolve"
    for body, field in (({"keep": "BOTH"}, "keep"), ({}, "keep")):
        refused = client.post(url, headers=tenant.headers, json=body)
        assert refused.status_code == 400 and refused.json()["details"]["field"] == field
    assert status_of(engine, Conflict, conflict_id) is ConflictStatus.OPEN

    for keep in ("WINNER", "WIX"):  # the winner by name, or by side; asking again is harmless
        kept = client.post(url, headers=tenant.headers, json={"keep": keep})
        assert kept.status_code == 200 and kept.json()["conflict"]["status"] == "ACKNOWLEDGED"
    still_open = client.get(f"{V2}/connections/{connection_id}/conflicts",
                            headers=tenant.headers, params={"status": "OPEN"})  # fmt: skip
    assert still_open.json()["conflicts"] == []
    late = client.post(url, headers=tenant.headers, json={"keep": "EXTERNAL"})
    assert late.status_code == 409 and late.json()["details"]["code"] == "CONFLICT_CLOSED"
    assert queued("sync") == []


def test_the_deleted_side_of_an_edit_cannot_be_kept(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    connection_id = seed_connection(engine, api_settings, tenant)
    conflict_id = add_conflict(engine, connection_id, field="deleted", wix_value=None,
                               external_value={"title": "Yoga"}, winner=Side.EXTERNAL)  # fmt: skip
    refused = client.post(f"{V2}/conflicts/{conflict_id}:resolve", headers=tenant.headers,
                          json={"keep": "WIX"})  # fmt: skip
    assert refused.status_code == 409 and refused.json()["details"]["code"] == "NOT_REVERSIBLE"
    assert status_of(engine, Conflict, conflict_id) is ConflictStatus.OPEN


def test_a_conflict_whose_field_changed_again_is_superseded(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    context: WorkerContext, queued: Queued,
) -> None:  # fmt: skip
    connection_id = seed_connection(engine, api_settings, tenant)
    home = calendar_of(engine, connection_id, "/alice/home/")
    base = event_body("Yoga (edited later)")["event"]
    assert isinstance(base, dict)
    with session_scope(engine) as db:
        db.add(Link(id="link-1", connection_id=connection_id, calendar_id=home, origin=Side.WIX,
                    base=base, wix_event_id="w1", external_event_id="e1"))  # fmt: skip
    conflict_id = add_conflict(engine, connection_id, link_id="link-1")

    kept = client.post(f"{V2}/conflicts/{conflict_id}:resolve", headers=tenant.headers,
                       json={"keep": "EXTERNAL"})  # fmt: skip
    assert kept.json()["conflict"]["status"] == "RESOLVING"
    assert (RESOLVE, [conflict_id]) in queued("sync")
    assert keep_losing_value(context, conflict_id) is ConflictStatus.SUPERSEDED
    with session_scope(engine) as db:
        link = db.get(Link, "link-1")
        assert link is not None and link.base["title"] == "Yoga (edited later)"


def test_keeping_the_losing_side_writes_its_value_to_both_calendars(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings,
    store: tuple[StoreState, ServedApp], worker: Launch, context: WorkerContext,
) -> None:  # fmt: skip
    pair = store_pair(engine, api_settings, tenant, store)
    connection_id = pair.connection_id
    pair.person_adds("wix-s1", "Yoga", hour=3)
    worker()
    exported = client.patch(f"{V2}/connections/{connection_id}/sync-config",
                            headers=tenant.headers, json={"syncConfig": {"syncToCalendar": {
                                "enabled": True, "calendar": {"id": "alice"}}}})  # fmt: skip
    assert exported.status_code == 200, exported.text

    def both_read(title: str) -> bool:
        return pair.titles("wix-s1") == [title] and pair.titles("alice") == [title]

    wait_until(lambda: both_read("Yoga"), 60, "the session's copy in alice")
    wait_until(lambda: broker_drained(context), 30, "the first runs to end")
    retitle(pair, "wix-s1", "Yoga (Wix)")
    retitle(pair, "alice", "Yoga (Alice)")
    assert client.post(f"{V2}/connections/{connection_id}:resync",
                       headers=tenant.headers).status_code == 200  # fmt: skip
    url = f"{V2}/connections/{connection_id}/conflicts"

    def open_conflicts() -> list[dict[str, Any]]:
        body = client.get(url, headers=tenant.headers, params={"status": "OPEN"}).json()
        return list(body["conflicts"])

    wait_until(lambda: len(open_conflicts()) == 1, 60, "the conflict to be recorded")
    found = open_conflicts()[0]
    assert (found["field"], found["winner"]) == ("title", "WIX")
    assert found["externalValue"] == "Yoga (Alice)"
    wait_until(lambda: both_read("Yoga (Wix)"), 30, "the winner on both sides")
    decided = client.get(f"{V2}/conflicts/{found['id']}", headers=tenant.headers).json()
    assert {"action": "Update", "side": "external", "reason": "CONFLICT_WIX_WINS",
            "outcome": "done", "count": 1} in decided["conflict"]["syncRun"]["actions"]  # fmt: skip

    kept = client.post(f"{V2}/conflicts/{found['id']}:resolve", headers=tenant.headers,
                       json={"keep": "EXTERNAL"})  # fmt: skip
    assert kept.status_code == 200, kept.text
    wait_until(lambda: both_read("Yoga (Alice)"), 60,
               lambda: f"alice's title on both sides: {pair.titles('wix-s1')}")  # fmt: skip
    wait_until(lambda: status_of(engine, Conflict, found["id"]) is ConflictStatus.RESOLVED, 30,
               "the conflict to be resolved")  # fmt: skip
    assert open_conflicts() == []


def retitle(pair: Pair, calendar: str, title: str) -> None:
    """A person renames the calendar's only event."""
    (remote,) = pair.events(calendar)
    event = dict(remote["event"]) | {"title": title}
    httpx.put(f"{pair.store_url}/_store/calendars/{calendar}/events/{remote['id']}",
              json={"event": event}).raise_for_status()  # fmt: skip
