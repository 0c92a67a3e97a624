"""`GET/PUT notification-settings`: who a business is told by when a connection breaks; the
webhook secret shown once and kept encrypted; bad input refused naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import TenantKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Text, cast, select

from models import Tenant
from models.db import session_scope

PATH = "/bookings/v2/external-calendars/notification-settings"
HOOK = "http://127.0.0.1:9/alerts"  # loopback: plain http will do


def put(client: TestClient, tenant: TenantKey, body: dict[str, Any]) -> Any:
    return client.put(PATH, headers=tenant.headers, json=body)


def settings_of(client: TestClient, tenant: TenantKey) -> dict[str, Any]:
    answer = client.get(PATH, headers=tenant.headers)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def stored_secret(engine: Engine, tenant: TenantKey) -> tuple[str | None, str | None]:
    """The secret as calsync reads it, and as the database holds it."""
    with session_scope(engine) as db:
        row = db.get(Tenant, tenant.tenant_id)
        assert row is not None
        raw = db.scalar(select(cast(Tenant.alert_webhook_secret, Text))
                        .where(Tenant.id == tenant.tenant_id))  # fmt: skip
        return row.alert_webhook_secret, raw


def test_the_webhook_secret_is_shown_once_and_stored_encrypted(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine
) -> None:
    assert settings_of(client, tenant) == {"notificationSettings": {}}
    wanted = {"email": "owner@studio.example", "webhookUrl": HOOK}
    first = put(client, tenant, {"notificationSettings": wanted})
    assert first.status_code == 200
    secret = first.json()["webhookSecret"]
    assert secret.startswith("cswh_") and len(secret) > 40
    assert first.json()["notificationSettings"] == wanted
    assert settings_of(client, tenant) == {"notificationSettings": wanted}  # no secret again
    kept, raw = stored_secret(engine, tenant)
    assert kept == secret and raw is not None and secret not in raw

    same = put(client, tenant, {"notificationSettings": wanted | {"email": "desk@studio.example"}})
    assert "webhookSecret" not in same.json()  # the URL stayed: so does its secret
    assert stored_secret(engine, tenant)[0] == secret
    rotated = put(client, tenant, {"notificationSettings": wanted, "rotateWebhookSecret": True})
    assert rotated.json()["webhookSecret"] not in (None, secret)
    moved = put(client, tenant, {"notificationSettings": wanted | {"webhookUrl": HOOK + "/v2"}})
    assert moved.json()["webhookSecret"] not in (None, secret, rotated.json()["webhookSecret"])

    assert settings_of(client, other) == {"notificationSettings": {}}
    cleared = put(client, tenant, {"notificationSettings": {"email": "owner@studio.example"}})
    assert cleared.json() == {"notificationSettings": {"email": "owner@studio.example"}}
    assert stored_secret(engine, tenant) == (None, None)


REFUSED = {
    "not an address": ({"email": "owner at studio"}, "notificationSettings.email"),
    "a header smuggled": ({"email": "a@b.example\nBcc: x@y.example"}, "notificationSettings.email"),
    "ftp": ({"webhookUrl": "ftp://127.0.0.1/alerts"}, "notificationSettings.webhookUrl"),
    "no host": ({"webhookUrl": "https:///alerts"}, "notificationSettings.webhookUrl"),
    "not a URL": ({"webhookUrl": "https://[::1/alerts"}, "notificationSettings.webhookUrl"),
    "plain http off loopback": ({"webhookUrl": "http://192.0.2.10/alerts"},
                                "notificationSettings.webhookUrl"),
    "a private network": ({"webhookUrl": "https://10.1.2.3/alerts"},
                          "notificationSettings.webhookUrl"),
    "cloud metadata": ({"webhookUrl": "https://169.254.169.254/latest"},
                       "notificationSettings.webhookUrl"),
}  # fmt: skip


@pytest.mark.parametrize(("wanted", "field"), REFUSED.values(), ids=REFUSED.keys())
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(
    client: TestClient, tenant: TenantKey, engine: Engine, wanted: dict[str, Any], field: str
) -> None:
    before = {"email": "owner@studio.example", "webhookUrl": HOOK}
    secret = put(client, tenant, {"notificationSettings": before}).json()["webhookSecret"]
    answer = put(client, tenant, {"notificationSettings": before | wanted})
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"]["field"] == field
    assert settings_of(client, tenant) == {"notificationSettings": before}
    assert stored_secret(engine, tenant)[0] == secret


def test_a_secret_to_rotate_needs_a_url_and_a_body_needs_its_settings(
    client: TestClient, tenant: TenantKey
) -> None:
    no_url = put(client, tenant, {"notificationSettings": {}, "rotateWebhookSecret": True})
    assert (no_url.status_code, no_url.json()["details"]["field"]) == (400, "rotateWebhookSecret")
    empty = put(client, tenant, {})
    assert (empty.status_code, empty.json()["details"]["field"]) == (400, "notificationSettings")
    assert client.get(PATH).status_code == 401
