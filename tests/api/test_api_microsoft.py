"""Connect By OAuth with Microsoft: real MSAL against the Graph sandbox's identity platform
(HTTPS on loopback), then the worker step that learns the primary calendar's id."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Queued, TenantKey, derive
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from api.oauth.flows import callback_url
from config import Settings
from models import PRIMARY_PLACEHOLDER, Connection, ExternalCalendar, Provider
from models.db import session_scope
from sandbox.graph.harness import GraphHarness, graph_harness
from tasks.context import WorkerContext, build_context
from tasks.first_sync import start_syncing

V2 = "/bookings/v2/external-calendars"
MICROSOFT_ID = "ae0d26b4-7e04-4735-a15e-1b1acaba2f00"
BACK = "https://studio.example/connected"


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


@pytest.fixture
def microsoft(
    api_settings: Settings, context: WorkerContext, graph: GraphHarness,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TestClient, WorkerContext]]:  # fmt: skip
    settings = derive(
        api_settings, microsoft_client_id=graph.client_id,
        microsoft_client_secret=graph.client_secret, microsoft_authority_url=graph.authority,
        microsoft_graph_base_url=graph.graph_base_url,
    )  # fmt: skip
    # MSAL makes its own requests session: let it trust the sandbox's certificate authority.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graph.tls.ca_path)
    graph.state.identity.register_app(graph.client_id, graph.client_secret,
                                      [callback_url(settings, Provider.MICROSOFT)])  # fmt: skip
    worker_side = build_context(settings)
    app = create_app(settings)
    app.state.gate = context.gate
    with TestClient(app, base_url=str(settings.public_base_url).rstrip("/")) as client:
        yield client, worker_side
    worker_side.http.close()


def test_microsoft_connects_and_a_worker_learns_the_primary_calendar(
    microsoft: tuple[TestClient, WorkerContext], graph: GraphHarness, tenant: TenantKey,
    engine: Engine, queued: Queued,
) -> None:  # fmt: skip
    client, worker_side = microsoft
    asked = client.post(f"{V2}/connections:connectByOAuth", headers=tenant.headers, json={
        "scheduleId": "sched-ms", "providerId": MICROSOFT_ID, "redirectUrl": BACK})  # fmt: skip
    assert asked.status_code == 200, asked.text
    oauth_url = asked.json()["oauthUrl"]
    assert oauth_url.startswith(f"{graph.authority}/oauth2/v2.0/authorize?")
    reply = graph.authorize(oauth_url)  # the browser at Microsoft's consent screen
    back = client.get("/oauth/microsoft/callback", params=reply, follow_redirects=False)
    assert back.status_code == 302, back.text
    connection_id = parse_qs(urlsplit(back.headers["location"]).query)["connectionId"][0]
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None and connection.external_account_email == graph.user.upn
        row = db.scalar(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        assert row is not None and row.remote_id == PRIMARY_PLACEHOLDER
    assert ("tasks.connections.first_sync", [connection_id]) in queued("sync")

    graph.state.add_calendar(graph.user.id, "Team", can_edit=False)
    assert start_syncing(worker_side, connection_id) == {"synced": 1}
    with session_scope(engine) as db:
        resolved = db.get(ExternalCalendar, row.id)
        assert resolved is not None and resolved.remote_id != PRIMARY_PLACEHOLDER
    # The account's other calendars are known now, for List Calendars; none syncs yet.
    listed = client.get(f"{V2}/connections/{connection_id}/calendars", headers=tenant.headers)
    calendars = {c["name"]: c for c in listed.json()["calendars"]}
    assert set(calendars) == {"Calendar", "Team"}, listed.text
    with session_scope(engine) as db:
        team = db.scalar(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id,
            ExternalCalendar.name == "Team",
        ))  # fmt: skip
        assert team is not None and team.read_only and not team.import_enabled
    both = {"listEventFromCalendars": {"calendars": {"calendars": [
        {"id": resolved.remote_id}, {"id": team.remote_id}]}}}  # fmt: skip
    changed = client.patch(f"{V2}/connections/{connection_id}/sync-config",
                           headers=tenant.headers, json={"syncConfig": both})  # fmt: skip
    assert changed.status_code == 200, changed.text
    with session_scope(engine) as db:
        assert db.get(ExternalCalendar, team.id).import_enabled  # type: ignore[union-attr]
    assert ("tasks.calendar_sync.sync_calendar", [row.id, "connect", True]) in queued("sync")
