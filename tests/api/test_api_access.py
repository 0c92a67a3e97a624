"""API keys, the one error shape, the provider list, and `calsync tenants create`."""

from __future__ import annotations

import subprocess
import sys

from conftest import TenantKey
from fastapi.testclient import TestClient
from harness.env import settings_env
from sqlalchemy import Engine, select

from config import Settings
from models import Tenant, TenantStatus
from models.db import session_scope

V2 = "/bookings/v2/external-calendars"


def test_no_key_or_a_wrong_key_is_401_in_the_error_shape(client: TestClient, tenant: TenantKey
                                                          ) -> None:  # fmt: skip
    missing = client.get(f"{V2}/providers")
    wrong = client.get(f"{V2}/providers", headers={"Authorization": "Bearer csk_not-a-key"})
    basic = client.get(f"{V2}/providers", headers={"Authorization": "Basic dXNlcjpwdw=="})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["details"]["code"] == "UNAUTHENTICATED"
        assert body["details"]["field"] == "Authorization"
        assert body["message"].startswith("Authorization: ")


def test_the_key_is_stored_only_as_its_hash(engine: Engine, tenant: TenantKey) -> None:
    with session_scope(engine) as db:
        row = db.get(Tenant, tenant.tenant_id)
        assert row is not None and row.api_key_hash is not None
        assert tenant.key not in row.api_key_hash and len(row.api_key_hash) == 64


def test_a_disabled_tenant_is_refused(client: TestClient, tenant: TenantKey, engine: Engine
                                      ) -> None:  # fmt: skip
    with session_scope(engine) as db:
        row = db.get(Tenant, tenant.tenant_id)
        assert row is not None
        row.status = TenantStatus.DISABLED
    response = client.get(f"{V2}/providers", headers=tenant.headers)
    assert response.status_code == 403
    assert response.json()["details"]["code"] == "PERMISSION_DENIED"


def test_providers_carry_wix_ids_and_our_caldav(client: TestClient, tenant: TenantKey) -> None:
    response = client.get(f"{V2}/providers", headers=tenant.headers)
    assert response.status_code == 200
    providers = {p["calendarType"] + ":" + p["name"]: p for p in response.json()["providers"]}
    google = providers["GOOGLE:Google Calendar"]
    assert google["id"] == google["appDefId"] == "6c533722-f1f9-4847-95c7-d4c4922ae9b0"
    assert google["features"]["connectMethods"] == ["OAUTH"]
    apple = providers["I_CAL:Apple Calendar"]
    assert apple["id"] == "9f084ae8-b3a6-4eb6-a29d-bc682c04b5fc"
    assert apple["features"]["connectMethods"] == ["CREDENTIALS"]
    assert apple["features"]["syncToCalendar"] == "DEDICATED_CALENDAR"
    microsoft = providers["MICROSOFT:Outlook or Office 365"]
    assert microsoft["id"] == "ae0d26b4-7e04-4735-a15e-1b1acaba2f00"
    assert microsoft["features"]["listEventFromCalendars"] == "SPECIFIC_CALENDARS"
    assert microsoft["features"]["syncToCalendar"] == "DEDICATED_CALENDAR"
    caldav = providers["OTHER:CalDAV"]
    assert caldav["features"]["requiresServerUrl"] is True
    assert "appDefId" not in caldav
    assert len(providers) == 4  # the local store is not offered


def test_validation_errors_are_400_and_name_the_field(client: TestClient, tenant: TenantKey
                                                       ) -> None:  # fmt: skip
    response = client.post(
        f"{V2}/connections:connectByOAuth",
        headers=tenant.headers,
        json={"providerId": "x", "redirectUrl": "https://a.example/"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["details"]["field"] == "scheduleId"
    assert body["message"].startswith("scheduleId: ")
    violations = body["details"]["validationError"]["fieldViolations"]
    assert [v["field"] for v in violations] == ["scheduleId"]
    query = client.get(f"{V2}/events", headers=tenant.headers, params={"cursorPaging.limit": 0})
    assert query.status_code == 400
    assert query.json()["details"]["field"] == "cursorPaging.limit"
    broken = client.post(f"{V2}/connections:connectByOAuth", headers=tenant.headers,
                         content=b"{not json", )  # fmt: skip
    assert broken.status_code == 400 and broken.json()["details"]["code"] == "INVALID_ARGUMENT"


def test_unknown_paths_answer_404_in_the_same_shape(client: TestClient, tenant: TenantKey) -> None:
    response = client.get(f"{V2}/nothing-here", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json()["details"]["code"] == "NOT_FOUND"


def test_openapi_documents_400_errors_not_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert all("422" not in op["responses"] for op in operations)
    connect = schema["paths"][f"{V2}/connections:connectByOAuth"]["post"]
    assert connect["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_cli_creates_a_tenant_and_prints_a_working_key(
    client: TestClient, api_settings: Settings, engine: Engine
) -> None:
    env = settings_env(api_settings)
    args = [sys.executable, "-m", "workers", "tenants", "create", "--instance-id", "inst-cli-1",
            "--name", "CLI studio"]  # fmt: skip
    made = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("csk_")
    answer = client.get(f"{V2}/providers", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists already" in again.stderr
    rotate = [sys.executable, "-m", "workers", "tenants", "rotate-key", "--instance-id",
              "inst-cli-1"]  # fmt: skip
    rotated = subprocess.run(rotate, env=env, capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0
    assert client.get(f"{V2}/providers", headers={"Authorization": f"Bearer {key}"}
                      ).status_code == 401  # fmt: skip
    new_key = rotated.stdout.strip()
    assert client.get(f"{V2}/providers", headers={"Authorization": f"Bearer {new_key}"}
                      ).status_code == 200  # fmt: skip
    with session_scope(engine) as db:
        names = db.scalars(select(Tenant.name).where(Tenant.wix_instance_id == "inst-cli-1"))
        assert list(names) == ["CLI studio"]
