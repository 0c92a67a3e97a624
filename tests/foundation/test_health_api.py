from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from config import Settings, load_settings
from models import Connection, ConnectionStatus, Provider, Tenant
from models.db import session_scope


@pytest.fixture
def client(settings: Settings, engine: Engine) -> TestClient:
    return TestClient(create_app(settings))


def test_healthz_answers_without_dependencies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    unreachable = load_settings(
        data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none",
        broker_url="redis://127.0.0.1:1/0",
    )  # fmt: skip
    client = TestClient(create_app(unreachable))
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("error")
    assert checks["broker"].startswith("error")


def test_readyz_is_ok_with_real_database_and_broker(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_fails_when_only_the_broker_is_down(settings: Settings, engine: Engine) -> None:
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    response = TestClient(create_app(broken)).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"


def test_metrics_in_prometheus_text_format(client: TestClient, engine: Engine) -> None:
    with session_scope(engine) as db:
        tenant = Tenant(wix_instance_id="metrics-instance")
        db.add(tenant)
        db.flush()
        for status in (ConnectionStatus.SYNCED, ConnectionStatus.SYNCED, ConnectionStatus.ERROR):
            db.add(Connection(tenant_id=tenant.id, provider=Provider.GOOGLE, schedule_id="s",
                              status=status))  # fmt: skip
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert 'calsync_connections{status="SYNCED"} 2.0' in body
    assert 'calsync_connections{status="ERROR"} 1.0' in body
    assert 'calsync_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_metrics_label_requests_by_route_template_and_status(client: TestClient) -> None:
    client.get("/bookings/v2/external-calendars/connections/123")  # no API key: 401
    client.get("/no/such/path")
    body = client.get("/metrics").text
    by_template = (
        r'calsync_http_requests_total\{method="GET",'
        r'route="[^"]*/connections/\{connectionId\}",status="401"\} 1\.0'
    )
    assert re.search(by_template, body), body
    assert "/123" not in body and "/no/such/path" not in body
    assert 'calsync_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in body


@pytest.mark.parametrize(
    "url", ["/healthz%00", "/healthz?x=%00", "/bookings/v2/external-calendars/providers?q=a%00"]
)
def test_nul_characters_in_path_or_query_are_refused(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["message"] == "NUL characters are not allowed"


def test_openapi_lists_the_health_endpoints(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
