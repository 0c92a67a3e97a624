"""Bodies over `CALSYNC_MAX_REQUEST_BYTES` are refused with 413 by every receiver and route,
before they are read whole, and change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TenantKey, derive
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from config import Settings
from models import InboxItem
from models.db import session_scope
from tasks.context import WorkerContext

LIMIT = 4096
PATHS = ["/webhooks/wix", "/webhooks/google", "/webhooks/microsoft",
         "/webhooks/microsoft/lifecycle", "/webhooks/local",
         "/bookings/v2/external-calendars/connections:connectByOAuth",
         "/bookings/v1/externalCalendar/events"]  # fmt: skip


@pytest.fixture
def small(api_settings: Settings, context: WorkerContext) -> Iterator[TestClient]:
    app = create_app(derive(api_settings, max_request_bytes=LIMIT))
    app.state.gate = context.gate
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def inbox_size(engine: Engine) -> int:
    with session_scope(engine) as db:
        return int(db.scalar(select(func.count()).select_from(InboxItem)) or 0)


@pytest.mark.parametrize("path", PATHS)
def test_a_body_over_the_limit_is_refused_unread_by_every_receiver_and_route(
    small: TestClient, tenant: TenantKey, engine: Engine, path: str
) -> None:
    before = inbox_size(engine)
    headers = {**tenant.headers, "Content-Type": "application/json"}
    declared = small.post(path, content=b"[" * (LIMIT + 1), headers=headers)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off once past the limit
        for _ in range(8):
            yield b" " * 1024

    streamed = small.post(path, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert inbox_size(engine) == before


def test_a_body_within_the_limit_is_read(small: TestClient, tenant: TenantKey) -> None:
    body = {"scheduleId": "s", "providerId": "nope", "redirectUrl": "https://studio.example/"}
    answer = small.post("/bookings/v2/external-calendars/connections:connectByOAuth",
                        json=body, headers=tenant.headers)  # fmt: skip
    assert answer.status_code != 413
