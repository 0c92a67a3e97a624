"""Connect By OAuth and the OAuth callback, against the Google sandbox over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from conftest import ALICE, Queued, TenantKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from api.app import create_app
from api.oauth import state as oauth_state
from config import Settings
from models import Connection, ConnectionStatus, ErrorReason, ExternalCalendar, PushChannel
from models.db import session_scope
from sandbox.google import GoogleState
from sandbox.server import ServedApp, serve_in_thread
from tasks.context import WorkerContext

V2 = "/bookings/v2/external-calendars"
GOOGLE_ID = "6c533722-f1f9-4847-95c7-d4c4922ae9b0"
BACK = "https://studio.example/oauth_completed?step=2"


def ask(client: httpx.Client, tenant: TenantKey, schedule: str = "sched-1",
        provider: str = GOOGLE_ID, redirect: str = BACK) -> httpx.Response:  # fmt: skip
    body = {"scheduleId": schedule, "providerId": provider, "redirectUrl": redirect}
    return client.post(f"{V2}/connections:connectByOAuth", json=body, headers=tenant.headers)


def consent(oauth_url: str) -> str:
    """What the browser does at Google: the sandbox answers at once with the redirect back."""
    response = httpx.get(oauth_url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def callback(client: httpx.Client, location: str) -> httpx.Response:
    parts = urlsplit(location)
    assert parts.path == "/oauth/google/callback"
    return client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def connections(engine: Engine) -> int:
    with engine.connect() as db:
        return int(db.scalar(select(func.count()).select_from(Connection)) or 0)


def test_oauth_connects_stores_tokens_encrypted_and_enqueues_the_first_sync(
    client: TestClient, tenant: TenantKey, engine: Engine, queued: Queued,
    google: tuple[GoogleState, ServedApp], api_settings: Settings,
) -> None:  # fmt: skip
    asked = ask(client, tenant)
    assert asked.status_code == 200, asked.text
    oauth_url = asked.json()["oauthUrl"]
    assert oauth_url.startswith(f"{google[1].base_url}/o/oauth2/v2/auth?")
    params = parse_qs(urlsplit(oauth_url).query)
    assert params["redirect_uri"] == [f"{api_settings.public_base_url}oauth/google/callback"]
    assert params["access_type"] == ["offline"] and params["state"]

    back = callback(client, consent(oauth_url))
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(BACK + "&connectionId=")
    connection_id = parse_qs(urlsplit(location).query)["connectionId"][0]

    got = client.get(f"{V2}/connections/{connection_id}", headers=tenant.headers).json()
    assert got["connection"] == {
        "id": connection_id, "providerId": GOOGLE_ID, "calendarType": "GOOGLE",
        "scheduleId": "sched-1", "externalAccountEmail": ALICE, "status": "CONNECTED",
        "syncConfig": {
            "listEventFromCalendars": {"enabled": True, "primaryCalendar": {}},
            "syncToCalendar": {"enabled": True, "primaryCalendar": {}},
            "privacy": "FULL", "conflictPolicy": "ORIGIN_WINS",
            "blockAllDayEvents": False, "blockFreeEvents": False,
        },
    }  # fmt: skip
    calendars = client.get(f"{V2}/connections/{connection_id}/calendars", headers=tenant.headers)
    assert calendars.json() == {"calendars": [
        {"id": ALICE, "name": ALICE, "primary": True, "readOnly": False}]}  # fmt: skip

    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None and connection.credentials is not None
        access, refresh = (
            connection.credentials["accessToken"],
            connection.credentials["refreshToken"],
        )
        calendar = db.scalar(select(ExternalCalendar).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        assert calendar is not None and calendar.import_enabled and calendar.export_target
        raw = db.execute(text("SELECT credentials FROM connections WHERE id = :id"),
                         {"id": connection_id}).scalar_one()  # fmt: skip
    assert access not in raw and refresh not in raw  # encrypted at rest
    assert ("tasks.calendar_sync.sync_calendar", [calendar.id, "connect", True]) in queued("sync")
    assert ("tasks.maintenance.open_channels", [connection_id]) in queued("maintenance")


def test_a_replayed_or_altered_callback_is_refused_without_a_redirect(
    client: TestClient, tenant: TenantKey, engine: Engine
) -> None:
    location = consent(ask(client, tenant).json()["oauthUrl"])
    assert callback(client, location).status_code == 302
    replay = callback(client, location)
    assert replay.status_code == 400 and "used already" in replay.text
    assert "location" not in replay.headers
    altered = location.replace("state=", "state=x")
    refused = callback(client, altered)
    assert refused.status_code == 400 and "location" not in refused.headers
    missing = client.get("/oauth/google/callback?code=abc", follow_redirects=False)
    assert missing.status_code == 400
    other_provider = client.get(
        "/oauth/microsoft/callback?" + urlsplit(location).query, follow_redirects=False
    )
    assert other_provider.status_code == 400 and "another provider" in other_provider.text
    assert connections(engine) == 1


@pytest.fixture
def served(api_settings: Settings, context: WorkerContext) -> Iterator[httpx.Client]:
    """calsync's API on a loopback port, and a client of it (a browser, for the callback)."""
    app = create_app(api_settings)
    app.state.gate = context.gate
    with serve_in_thread(app) as api, httpx.Client(base_url=api.base_url) as http:
        yield http


def issued_earlier(settings: Settings, oauth_url: str, seconds: float) -> str:
    """The consent URL with its state signed `seconds` ago: the same tenant, schedule,
    provider and redirect URL, signed by calsync's own keys, only issued earlier (a sign-in
    link left open that long)."""
    parts = urlsplit(oauth_url)
    query = parse_qs(parts.query)
    made = oauth_state.verify_state(settings, query["state"][0], "google")
    query["state"] = [oauth_state.issue(
        settings, tenant_id=made.tenant_id, schedule_id=made.schedule_id,
        provider=made.provider, redirect_url=made.redirect_url, now=time.time() - seconds,
    )]  # fmt: skip
    return parts._replace(query=urlencode(query, doseq=True)).geturl()


def test_an_expired_state_is_refused_before_the_code_is_exchanged(
    served: httpx.Client, tenant: TenantKey, engine: Engine, queued: Queued,
    google: tuple[GoogleState, ServedApp], api_settings: Settings,
) -> None:  # fmt: skip
    oauth_url = ask(served, tenant).json()["oauthUrl"]
    ttl = api_settings.oauth_state_ttl
    location = consent(issued_earlier(api_settings, oauth_url, ttl + 1))
    code = parse_qs(urlsplit(location).query)["code"][0]
    refused = callback(served, location)
    assert refused.status_code == 400 and "expired" in refused.text
    assert "location" not in refused.headers and "connectionId" not in refused.text
    assert not google[0].grants.codes[code].used and not google[0].grants.grants
    assert connections(engine) == 0
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(ExternalCalendar)) == 0
        assert db.scalar(select(func.count()).select_from(PushChannel)) == 0
    assert queued("sync") == [] and queued("maintenance") == []

    # The same link a moment before its expiry still connects: only the age was refused.
    fresh = callback(served, consent(issued_earlier(api_settings, oauth_url, ttl - 30)))
    assert fresh.status_code == 302 and "connectionId=" in fresh.headers["location"]
    assert connections(engine) == 1


def test_a_user_who_declines_goes_back_with_error_reject(
    client: TestClient, tenant: TenantKey, engine: Engine, google: tuple[GoogleState, ServedApp]
) -> None:
    google[0].consent_decision = "deny"
    back = callback(client, consent(ask(client, tenant).json()["oauthUrl"]))
    assert back.status_code == 302
    assert back.headers["location"] == BACK + "&error=reject"
    assert connections(engine) == 0


def test_a_failed_code_exchange_goes_back_with_error_internal(
    client: TestClient, tenant: TenantKey, engine: Engine, google: tuple[GoogleState, ServedApp]
) -> None:
    location = consent(ask(client, tenant).json()["oauthUrl"])
    google[0].faults.fail(1, status=500, target="token")
    back = callback(client, location)
    assert back.headers["location"] == BACK + "&error=internal"
    assert connections(engine) == 0


def test_a_schedule_is_connected_once_and_never_by_another_tenant(
    client: TestClient, tenant: TenantKey, other: TenantKey
) -> None:
    callback(client, consent(ask(client, tenant).json()["oauthUrl"]))
    again = ask(client, tenant)
    assert again.status_code == 409
    assert again.json()["details"] == {"code": "ALREADY_CONNECTED", "field": "scheduleId"}
    theirs = ask(client, other)
    assert theirs.status_code == 404
    assert theirs.json()["details"] == {"code": "NOT_FOUND", "field": "scheduleId"}


def test_reconnecting_an_account_in_error_takes_the_connection_over(
    client: TestClient, tenant: TenantKey, engine: Engine
) -> None:
    first = callback(client, consent(ask(client, tenant).json()["oauthUrl"]))
    connection_id = parse_qs(urlsplit(first.headers["location"]).query)["connectionId"][0]
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        connection.status, connection.error_reason = (
            ConnectionStatus.ERROR,
            ErrorReason.TOKEN_REVOKED,
        )
    got = client.get(f"{V2}/connections/{connection_id}", headers=tenant.headers).json()
    assert got["connection"]["errorReason"] == "TOKEN_REVOKED"
    second = callback(client, consent(ask(client, tenant).json()["oauthUrl"]))
    assert second.headers["location"].endswith(f"connectionId={connection_id}")
    got = client.get(f"{V2}/connections/{connection_id}", headers=tenant.headers).json()
    assert got["connection"]["status"] == "CONNECTED" and "errorReason" not in got["connection"]
    assert connections(engine) == 1


def test_connect_by_oauth_refuses_bad_input(client: TestClient, tenant: TenantKey) -> None:
    apple = ask(client, tenant, provider="9f084ae8-b3a6-4eb6-a29d-bc682c04b5fc")
    assert (apple.status_code, apple.json()["details"]["field"]) == (428, "providerId")
    microsoft = ask(client, tenant, provider="ae0d26b4-7e04-4735-a15e-1b1acaba2f00")
    assert microsoft.status_code == 428 and "no OAuth client" in microsoft.json()["message"]
    unknown = ask(client, tenant, provider="no-such-provider")
    assert (unknown.status_code, unknown.json()["details"]["field"]) == (404, "providerId")
    ftp = ask(client, tenant, redirect="ftp://studio.example/x")
    assert (ftp.status_code, ftp.json()["details"]["field"]) == (400, "redirectUrl")
    long_id = ask(client, tenant, schedule="s" * 65)
    assert (long_id.status_code, long_id.json()["details"]["field"]) == (400, "scheduleId")
