"""The v1 External Calendar Sync API: the approval email flow end to end (a real SMTP server,
a real worker sending the mail, the Google sandbox's consent and token endpoints), and each
endpoint's good and bad input."""

from __future__ import annotations

import email
import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from conftest import ALICE, Queued, TenantKey, derive, seed_connection
from fastapi.testclient import TestClient
from harness.clock import days_ahead
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, func, select

from api.app import create_app
from config import Settings
from models import (
    Connection,
    ConnectionStatus,
    ErrorReason,
    ExternalCalendar,
    Provider,
    SyncRequest,
)
from models.db import session_scope
from models.sync_request import approval_token
from providers.base import CalendarInfo
from sandbox.server import ServedApp, free_port, serve_in_thread
from tasks.context import WorkerContext

V1 = "/bookings/v1/externalCalendar"
V2 = "/bookings/v2/external-calendars"


class Mailbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def served(api_settings: Settings, context: WorkerContext, mailbox: tuple[Mailbox, int]
           ) -> Iterator[tuple[ServedApp, Settings]]:  # fmt: skip
    """The API on a real port, so the links in the email lead back to it."""
    port = free_port()
    settings = derive(api_settings, public_base_url=f"http://127.0.0.1:{port}",
                      smtp_host="127.0.0.1", smtp_port=mailbox[1],
                      smtp_from="bookings@studio.example")  # fmt: skip
    app = create_app(settings)
    app.state.gate = context.gate
    with serve_in_thread(app, port=port) as running:
        yield running, settings


def status(base: str, tenant: TenantKey, resource: str) -> str:
    response = httpx.get(f"{base}{V1}/status/{resource}", headers=tenant.headers)
    [entry] = response.json()["statuses"]
    assert (entry["resourceId"], entry["calendar"]) == (resource, "GOOGLE")
    return str(entry["status"])


def test_approval_email_to_connected_calendar(
    served: tuple[ServedApp, Settings], mailbox: tuple[Mailbox, int], tenant: TenantKey,
    worker: Launch, queued: Queued, engine: Engine,
) -> None:  # fmt: skip
    app, settings = served
    base, box = app.base_url, mailbox[0]
    assert status(base, tenant, "res-1") == "NONE"
    asked = httpx.post(f"{base}{V1}/sync", headers=tenant.headers,
                       json={"resourceId": "res-1", "syncRequestEmail": ALICE})  # fmt: skip
    assert (asked.status_code, asked.json()) == (200, {})
    assert status(base, tenant, "res-1") == "PENDING"

    worker(settings, queues="maintenance")  # sends the mail; nothing consumes the sync queue here
    wait_until(lambda: len(box.messages) == 1, 60, "the approval email")
    message = box.messages[0]
    assert (message["To"], message["From"]) == (ALICE, "bookings@studio.example")
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(rf"{re.escape(base)}/approve/\S+", text)
    assert link is not None

    page = httpx.get(link.group(0))
    assert page.status_code == 200 and ALICE in page.text
    start = re.search(r'id="approve" href="([^"]+)"', page.text)
    assert start is not None
    to_google = httpx.get(start.group(1), follow_redirects=False)
    assert to_google.headers["location"].startswith(str(settings.google_auth_url))
    consent = httpx.get(to_google.headers["location"], follow_redirects=False)
    back = httpx.get(consent.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    assert back.headers["location"].startswith(f"{base}/approve/done?connectionId=")
    done = httpx.get(back.headers["location"])
    assert "Calendar connected" in done.text

    assert status(base, tenant, "res-1") == "CONNECTED"
    [connection] = httpx.get(f"{base}{V2}/connections", headers=tenant.headers
                             ).json()["connections"]  # fmt: skip
    assert (connection["scheduleId"], connection["externalAccountEmail"]) == ("res-1", ALICE)
    with session_scope(engine) as db:
        calendar_id = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection["id"]))  # fmt: skip
    assert ("tasks.calendar_sync.sync_calendar", [calendar_id, "connect", True]) in queued("sync")
    used = httpx.get(link.group(0))
    assert used.status_code == 404 and "not valid" in used.text

    unsynced = httpx.post(f"{base}{V1}/unsync", headers=tenant.headers,
                          json={"resourceId": "res-1", "calendar": "GOOGLE"})  # fmt: skip
    assert unsynced.json() == {}
    assert status(base, tenant, "res-1") == "DISCONNECTED"
    assert ("tasks.connections.disconnect", [connection["id"]]) in queued("sync")


def test_a_new_request_replaces_the_pending_one_and_unsync_withdraws_it(
    client: TestClient, tenant: TenantKey, queued: Queued
) -> None:
    for address in ("old@example.com", "new@example.com"):
        response = client.post(
            f"{V1}/sync",
            headers=tenant.headers,
            json={"resourceId": "res-2", "syncRequestEmail": address},
        )
        assert response.status_code == 200
    assert len([t for t, _ in queued("maintenance") if t == "tasks.mail.send_approval"]) == 2
    listed = client.get(f"{V1}/status", headers=tenant.headers).json()
    assert listed == {"statuses": [{"resourceId": "res-2", "calendar": "GOOGLE",
                                    "status": "PENDING"}]}  # fmt: skip
    client.post(f"{V1}/unsync", headers=tenant.headers, json={"resourceId": "res-2"})
    assert client.get(f"{V1}/status/res-2", headers=tenant.headers).json()["statuses"][0][
        "status"] == "NONE"  # fmt: skip


def test_v1_statuses_follow_the_google_connection(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    primary = CalendarInfo(ALICE, ALICE, False, primary=True)
    connection_id = seed_connection(engine, api_settings, tenant, "res-3", Provider.GOOGLE,
                                    (primary,), server_url=None)  # fmt: skip

    def current() -> str:
        answer = client.get(f"{V1}/status/res-3", headers=tenant.headers).json()
        return str(answer["statuses"][0]["status"])

    assert current() == "CONNECTED"
    with session_scope(engine) as db:
        connection = db.get(Connection, connection_id)
        assert connection is not None
        connection.status, connection.error_reason = (
            ConnectionStatus.ERROR,
            ErrorReason.TOKEN_REVOKED,
        )
    assert current() == "DISCONNECTED_TOKEN_REVOKED"
    again = client.post(f"{V1}/sync", headers=tenant.headers,
                        json={"resourceId": "res-3", "syncRequestEmail": ALICE})  # fmt: skip
    assert again.status_code == 200  # a revoked connection may be approved anew
    assert current() == "PENDING"


def test_v1_refuses_bad_input(
    client: TestClient, tenant: TenantKey, other: TenantKey, engine: Engine,
    api_settings: Settings, context: WorkerContext,
) -> None:  # fmt: skip
    def field_of(response: httpx.Response) -> tuple[int, str | None]:
        return response.status_code, response.json()["details"]["field"]

    body = {"resourceId": "res-4", "syncRequestEmail": ALICE}
    assert field_of(client.post(f"{V1}/sync", headers=tenant.headers,
                                json={**body, "syncRequestEmail": "not-an-email"})
                    ) == (400, "syncRequestEmail")  # fmt: skip
    assert field_of(
        client.post(f"{V1}/sync", headers=tenant.headers, json={**body, "calendar": "OUTLOOK"})
    ) == (400, "calendar")
    assert field_of(
        client.post(f"{V1}/sync", headers=tenant.headers, json={"syncRequestEmail": ALICE})
    ) == (400, "resourceId")
    primary = CalendarInfo(ALICE, ALICE, False, primary=True)
    seed_connection(engine, api_settings, other, "res-theirs", Provider.GOOGLE, (primary,),
                    server_url=None)  # fmt: skip
    theirs = {"resourceId": "res-theirs", "syncRequestEmail": ALICE}
    assert field_of(client.post(f"{V1}/sync", headers=tenant.headers, json=theirs)
                    ) == (404, "resourceId")  # fmt: skip
    assert field_of(client.get(f"{V1}/status/res-theirs", headers=tenant.headers)
                    ) == (404, "resourceId")  # fmt: skip
    assert field_of(
        client.post(f"{V1}/unsync", headers=tenant.headers, json={"resourceId": "res-theirs"})
    ) == (404, "resourceId")
    seed_connection(engine, api_settings, tenant, "res-mine", Provider.GOOGLE, (primary,),
                    server_url=None)  # fmt: skip
    mine = {"resourceId": "res-mine", "syncRequestEmail": ALICE}
    assert field_of(client.post(f"{V1}/sync", headers=tenant.headers, json=mine)
                    ) == (409, "resourceId")  # fmt: skip
    app = create_app(derive(api_settings, google_client_id=""))
    app.state.gate = context.gate
    with TestClient(app) as unconfigured:
        assert field_of(unconfigured.post(f"{V1}/sync", headers=tenant.headers, json=body)
                        ) == (428, "calendar")  # fmt: skip


def test_v1_events_take_a_stringified_filter(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    from models import Link, Side

    primary = CalendarInfo(ALICE, ALICE, False, primary=True)
    connection_id = seed_connection(engine, api_settings, tenant, "res-5", Provider.GOOGLE,
                                    (primary,), server_url=None)  # fmt: skip
    day = days_ahead(2, 0)

    def wix_time(after: timedelta, millis: str = "000") -> str:
        return f"{day + after:%Y-%m-%dT%H:%M:%S}.{millis}Z"

    snapshot = {
        "title": "Dentist",
        "start": (day + timedelta(hours=9)).isoformat(),
        "end": (day + timedelta(hours=10)).isoformat(),
        "allDay": False,
        "status": "confirmed",
    }
    with session_scope(engine) as db:
        calendar_id = db.scalar(select(ExternalCalendar.id).where(
            ExternalCalendar.connection_id == connection_id))  # fmt: skip
        db.add(Link(connection_id=connection_id, calendar_id=calendar_id, origin=Side.EXTERNAL,
                    base=snapshot, external_seen=snapshot, external_event_id="g1"))  # fmt: skip
    span = {"start": wix_time(timedelta(days=-1), "373"),
            "end": wix_time(timedelta(days=28, hours=12, minutes=43, seconds=58), "373")}
    wanted = json.dumps({**span, "resourceId": ["res-5"]})  # the filter as a string
    response = client.post(f"{V1}/events", headers=tenant.headers,
                           json={"query": {"filter": wanted}})  # fmt: skip
    assert response.json() == {"events": [{
        "resourceId": "res-5", "calendar": "GOOGLE",
        "start": wix_time(timedelta(hours=9)), "end": wix_time(timedelta(hours=10))}]}  # fmt: skip
    as_object = {"start": wix_time(timedelta(days=1)), "end": wix_time(timedelta(days=2))}
    empty = client.post(f"{V1}/events", headers=tenant.headers,
                        json={"query": {"filter": as_object}})  # fmt: skip
    assert empty.json() == {"events": []}

    def field_of(filter_value: Any) -> tuple[int, str]:
        bad = client.post(f"{V1}/events", headers=tenant.headers,
                          json={"query": {"filter": filter_value}})  # fmt: skip
        return bad.status_code, bad.json()["details"]["field"]

    assert field_of("{not json") == (400, "query.filter")
    assert field_of('["a"]') == (400, "query.filter")
    assert field_of("[" * 50_000) == (400, "query.filter")  # too deep to read: no 500
    assert field_of(json.dumps({"end": as_object["end"]})) == (400, "query.filter.start")
    backwards = {"start": as_object["end"], "end": as_object["start"]}
    assert field_of(json.dumps(backwards)) == (400, "query.filter.end")
    assert field_of({**as_object, "resourceId": [1]}) == (400, "query.filter.resourceId")


def test_a_request_withdrawn_before_the_owner_returns_makes_no_connection(
    client: TestClient, tenant: TenantKey, engine: Engine, api_settings: Settings
) -> None:
    client.post(f"{V1}/sync", headers=tenant.headers,
                json={"resourceId": "res-6", "syncRequestEmail": ALICE})  # fmt: skip
    with session_scope(engine) as db:
        request_id = db.scalar(select(SyncRequest.id).where(SyncRequest.resource_id == "res-6"))
        assert request_id is not None
    token = approval_token(api_settings, request_id)
    assert client.get(f"/approve/{token}x").status_code == 404  # a forged token
    to_google = client.get(f"/approve/{token}/start", follow_redirects=False)
    consent = httpx.get(to_google.headers["location"], follow_redirects=False)
    client.post(f"{V1}/unsync", headers=tenant.headers, json={"resourceId": "res-6"})
    callback = urlsplit(consent.headers["location"])
    back = client.get(f"{callback.path}?{callback.query}", follow_redirects=False)
    assert back.headers["location"].endswith("/approve/done?error=internal")
    assert "went wrong" in client.get("/approve/done?error=internal").text
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(Connection)) == 0
