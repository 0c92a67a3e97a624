"""Connect By Credentials: checked at once against a real CalDAV server (Radicale)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import Queued, TenantKey, derive
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from config import Settings
from models import Connection, ExternalCalendar
from sandbox.caldav_servers import CalDAVServer, start_radicale
from tasks.context import WorkerContext

V2 = "/bookings/v2/external-calendars"
APPLE_ID = "9f084ae8-b3a6-4eb6-a29d-bc682c04b5fc"
CALDAV_ID = "5b1c7a0e-2c6d-5e8f-9a31-4cda1dcaf001"
GOOGLE_ID = "6c533722-f1f9-4847-95c7-d4c4922ae9b0"
EMPTY_CALENDAR = (
    '<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>{name}</D:displayname></D:prop></D:set></C:mkcalendar>"
)


@pytest.fixture(scope="module")
def radicale() -> Iterator[CalDAVServer]:
    server = start_radicale()
    make_calendar(server, "alice", "work", "Work")
    make_calendar(server, "admin", "readonly-holidays", "Holidays")  # alice may only read it
    yield server
    server.stop()


def make_calendar(server: CalDAVServer, user: str, slug: str, name: str) -> None:
    url = f"{server.base_url}alice/{slug}/"
    response = httpx.request("MKCALENDAR", url, auth=server.credentials(user),
                             content=EMPTY_CALENDAR.format(name=name))  # fmt: skip
    assert response.status_code == 201, response.text


def connect(client: TestClient, tenant: TenantKey, **fields: str) -> httpx.Response:
    body = {"scheduleId": "sched-cal", "providerId": CALDAV_ID, "email": "alice",
            "password": "alice-secret", **fields}  # fmt: skip
    return client.post(f"{V2}/connections:connectByCredentials", json=body, headers=tenant.headers)


def stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as db:
        connections = db.scalar(select(func.count()).select_from(Connection)) or 0
        calendars = db.scalar(select(func.count()).select_from(ExternalCalendar)) or 0
    return int(connections), int(calendars)


def test_caldav_credentials_connect_and_list_the_calendars(
    client: TestClient, tenant: TenantKey, radicale: CalDAVServer, queued: Queued, engine: Engine
) -> None:
    response = connect(client, tenant, serverUrl=radicale.base_url)
    assert response.status_code == 200, response.text
    connection = response.json()["connection"]
    assert (connection["status"], connection["calendarType"]) == ("CONNECTED", "OTHER")
    assert connection["externalAccountEmail"] == "alice"
    listing = connection["syncConfig"]["listEventFromCalendars"]
    assert listing["enabled"] is True  # no primary: the first writable calendar
    assert [c["name"] for c in listing["calendars"]["calendars"]] == ["Work"]
    assert connection["syncConfig"]["syncToCalendar"] == {"enabled": False}
    calendars = client.get(f"{V2}/connections/{connection['id']}/calendars",
                           headers=tenant.headers).json()["calendars"]  # fmt: skip
    read_only = {c["name"]: c["readOnly"] for c in calendars}
    assert read_only == {"Holidays": True, "Work": False}
    syncs = [args for task, args in queued("sync") if task.endswith("sync_calendar")]
    assert len(syncs) == 1 and syncs[0][1:] == ["connect", True]
    assert stored(engine) == (1, 2)


def test_a_wrong_password_is_a_clear_400_and_nothing_is_stored(
    client: TestClient, tenant: TenantKey, radicale: CalDAVServer, engine: Engine
) -> None:
    response = connect(client, tenant, serverUrl=radicale.base_url, password="wrong")
    assert response.status_code == 400
    body = response.json()
    assert body["details"] == {"code": "INVALID_CREDENTIALS", "field": "password"}
    assert "wrong" not in response.text
    assert stored(engine) == (0, 0)


def test_apple_uses_the_configured_server(
    api_settings: Settings, context: WorkerContext, tenant: TenantKey, radicale: CalDAVServer
) -> None:
    app = create_app(derive(api_settings, apple_caldav_url=radicale.base_url))
    app.state.gate = context.gate
    with TestClient(app) as client:
        response = connect(client, tenant, providerId=APPLE_ID)
    assert response.status_code == 200, response.text
    assert response.json()["connection"]["calendarType"] == "I_CAL"


def test_private_addresses_are_refused_unless_allowed(
    api_settings: Settings, context: WorkerContext, tenant: TenantKey, radicale: CalDAVServer,
    engine: Engine,
) -> None:  # fmt: skip
    app = create_app(derive(api_settings, caldav_allow_private=False))
    app.state.gate = context.gate
    with TestClient(app) as client:
        loopback = connect(client, tenant, serverUrl=radicale.base_url)
        metadata = connect(client, tenant, serverUrl="http://169.254.169.254/latest/")
    for response in (loopback, metadata):
        assert response.status_code == 400
        assert response.json()["details"]["field"] == "serverUrl"
        assert "refused" in response.json()["message"]
    assert stored(engine) == (0, 0)


def test_connect_by_credentials_refuses_bad_input(
    client: TestClient, tenant: TenantKey, engine: Engine
) -> None:
    def field_of(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["details"]["field"]

    assert field_of(connect(client, tenant)) == (400, "serverUrl")
    assert field_of(connect(client, tenant, serverUrl="file:///etc/passwd")) == (400, "serverUrl")
    assert field_of(connect(client, tenant, serverUrl="http://[::1/")) == (400, "serverUrl")
    # The metadata service stays refused where private servers are allowed (as here).
    metadata = connect(client, tenant, serverUrl="http://169.254.169.254/latest/")
    assert field_of(metadata) == (400, "serverUrl") and "refused" in metadata.json()["message"]
    closed = "http://127.0.0.1:9/"  # nothing listens on the discard port
    assert field_of(connect(client, tenant, serverUrl=closed)) == (400, "serverUrl")
    assert field_of(connect(client, tenant, providerId=GOOGLE_ID)) == (428, "providerId")
    assert field_of(connect(client, tenant, password="")) == (400, "password")
    assert stored(engine) == (0, 0)
