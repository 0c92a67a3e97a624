"""The Microsoft Graph receivers on the real app, PostgreSQL and Redis: the validation handshake,
clientState checks, what reaches the inbox and the broker. End to end (Graph sandbox, workers):
tests/pipeline/test_microsoft_pipeline.py."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Queued, TenantKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from models import (
    PRIMARY_PLACEHOLDER,
    ChannelStatus,
    Connection,
    ExternalCalendar,
    InboxItem,
    InboxStatus,
    Link,
    Provider,
    PushChannel,
)
from models.db import session_scope
from models.types import utcnow
from sync.side import Side

HOOK = "/webhooks/microsoft"
LIFECYCLE = "/webhooks/microsoft/lifecycle"
SYNC = "tasks.calendar_sync.sync_calendar"
MENDS = "tasks.maintenance.mend_channel"


@dataclass(frozen=True)
class Subscribed:
    calendar_id: str
    connection_id: str
    subscription_id: str
    client_state: str


def subscribe(engine: Engine, tenant: TenantKey, n: int = 1,
              status: ChannelStatus = ChannelStatus.ACTIVE) -> Subscribed:  # fmt: skip
    with session_scope(engine) as db:
        connection = Connection(tenant_id=tenant.tenant_id, provider=Provider.MICROSOFT,
                                schedule_id=f"sched-{n}", sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id=f"AAMk-{n}",
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        made = Subscribed(calendar.id, connection.id, f"sub-{n}-{calendar.id[:6]}",
                          f"client-state-{n}-kept-secret")  # fmt: skip
        db.add(PushChannel(calendar_id=calendar.id, provider=Provider.MICROSOFT,
                           channel_id=made.subscription_id, resource_id="/me/events",
                           secret=made.client_state, status=status,
                           expires_at=utcnow() + timedelta(days=2)))  # fmt: skip
        return made


def graph_time(moment: datetime) -> str:
    """A time as Graph writes it in notifications: seven fractional digits, then Z."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.0000000Z"


def change(sub: Subscribed, event_id: str = "AAMkEv1", etag: str = 'W/"ck1"', **over: Any
           ) -> dict[str, Any]:  # fmt: skip
    return {
        "id": "notification-1",
        "subscriptionId": sub.subscription_id,
        "subscriptionExpirationDateTime": graph_time(utcnow() + timedelta(days=2)),
        "clientState": sub.client_state,
        "changeType": "updated",
        "resource": f"Users/u1@t1/Events/{event_id}",
        "tenantId": "t1",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.etag": etag,
                         "@odata.id": f"Users/u1@t1/Events/{event_id}", "id": event_id},
        **over,
    }  # fmt: skip


def lifecycle(sub: Subscribed, event: str, **over: Any) -> dict[str, Any]:
    return {"subscriptionId": sub.subscription_id, "clientState": sub.client_state,
            "subscriptionExpirationDateTime": graph_time(utcnow() + timedelta(days=2)),
            "tenantId": "t1", "lifecycleEvent": event, **over}  # fmt: skip


def inbox(engine: Engine) -> list[InboxItem]:
    with session_scope(engine) as db:
        rows = list(db.scalars(select(InboxItem).order_by(InboxItem.id)))
        db.expunge_all()
        return rows


def names(queued: Queued, queue: str) -> list[tuple[str, list[Any]]]:
    return [(name, args[:2]) for name, args in queued(queue)]


@pytest.mark.parametrize("path", [HOOK, LIFECYCLE])
def test_the_validation_handshake_echoes_the_decoded_token(client: TestClient, path: str) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 1+2"
    answer = client.post(path, params={"validationToken": token},
                         headers={"Content-Type": "text/plain; charset=utf-8"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == "text/plain"
    assert answer.text == token
    # Anyone may post a token, markup included: a browser must never read it as a page.
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_notification_is_recorded_once_and_asks_for_one_sync(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    sub = subscribe(engine, tenant)
    body = {"value": [change(sub), change(sub, "AAMkEv2", 'W/"ck2"')]}
    answer = client.post(HOOK, json=body)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"recorded": 2, "rejected": 0}
    assert client.post(HOOK, json=body).json() == {"recorded": 0, "rejected": 0}  # a resend
    rows = inbox(engine)
    assert [(r.provider, r.calendar_id, r.payload["event"]) for r in rows] == [
        ("microsoft", sub.calendar_id, "AAMkEv1"),
        ("microsoft", sub.calendar_id, "AAMkEv2"),
    ]
    assert all(r.status is InboxStatus.ENQUEUED for r in rows)
    assert names(queued, "sync") == [(SYNC, [sub.calendar_id, "webhook"])]  # one, debounced


def test_wrong_client_state_is_refused_and_nothing_recorded(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    sub = subscribe(engine, tenant)
    forged = change(sub, clientState="guessed")
    with caplog.at_level(logging.WARNING):
        answer = client.post(HOOK, json={"value": [forged]})
    assert answer.status_code == 401
    assert "dropped 1" in caplog.text and sub.client_state not in caplog.text
    unknown = change(sub, subscriptionId="not-ours")
    assert client.post(HOOK, json={"value": [unknown]}).status_code == 401
    no_state = {k: v for k, v in change(sub).items() if k != "clientState"}
    assert client.post(HOOK, json={"value": [no_state]}).status_code == 401
    assert inbox(engine) == [] and queued("sync") == []

    mixed = client.post(HOOK, json={"value": [forged, change(sub)]})  # the valid item counts
    assert mixed.status_code == 202 and mixed.json() == {"recorded": 1, "rejected": 1}
    assert len(inbox(engine)) == 1


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"value": 3}'])
def test_a_body_that_is_no_notification_collection_is_a_400(
    client: TestClient, engine: Engine, body: bytes
) -> None:
    answer = client.post(HOOK, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["details"]["code"] == "INVALID_ARGUMENT"
    assert inbox(engine) == []


def test_a_stopped_subscription_is_acknowledged_without_work(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    sub = subscribe(engine, tenant, status=ChannelStatus.STOPPED)
    answer = client.post(HOOK, json={"value": [change(sub)]})
    assert answer.status_code == 202 and answer.json()["recorded"] == 0
    assert inbox(engine) == [] and queued("sync") == []


def test_nothing_is_asked_of_a_calendar_whose_id_the_first_sync_has_not_learnt(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    sub = subscribe(engine, tenant)
    with session_scope(engine) as db:
        calendar = db.get(ExternalCalendar, sub.calendar_id)
        assert calendar is not None
        calendar.remote_id = PRIMARY_PLACEHOLDER  # connected a moment ago
    answer = client.post(HOOK, json={"value": [change(sub)]})
    assert answer.status_code == 202 and answer.json()["recorded"] == 0
    assert inbox(engine) == [] and queued("sync") == []


def test_the_echo_of_our_own_write_is_recorded_done(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    sub = subscribe(engine, tenant)
    with session_scope(engine) as db:
        db.add(Link(connection_id=sub.connection_id, calendar_id=sub.calendar_id,
                    wix_event_id="wix-1", external_event_id="AAMkEv1",
                    external_version='W/"ck1"', origin=Side.WIX, base={}))  # fmt: skip
    assert client.post(HOOK, json={"value": [change(sub)]}).status_code == 202
    (row,) = inbox(engine)
    assert row.status is InboxStatus.DONE and queued("sync") == []


def test_lifecycle_notices_are_recorded_and_handed_on(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    first, second = subscribe(engine, tenant, 1), subscribe(engine, tenant, 2)
    body = {"value": [lifecycle(first, "reauthorizationRequired"),
                      lifecycle(second, "subscriptionRemoved"),
                      lifecycle(first, "missed")]}  # fmt: skip
    answer = client.post(LIFECYCLE, json=body)
    assert answer.status_code == 202 and answer.json() == {"recorded": 3, "rejected": 0}
    assert client.post(LIFECYCLE, json=body).json()["recorded"] == 0  # a resend
    assert sorted(names(queued, "maintenance")) == [
        (MENDS, [first.subscription_id, "renew"]),
        (MENDS, [second.subscription_id, "reopen"])]  # fmt: skip
    assert names(queued, "sync") == [(SYNC, [first.calendar_id, "webhook"])]  # missed: resync
    rows = inbox(engine)
    assert [r.payload["lifecycle"] for r in rows] == [
        "reauthorizationRequired", "subscriptionRemoved", "missed"]  # fmt: skip
    assert all(r.status is InboxStatus.ENQUEUED for r in rows)


def test_a_forged_lifecycle_notice_is_refused(
    client: TestClient, engine: Engine, tenant: TenantKey, queued: Queued
) -> None:
    sub = subscribe(engine, tenant)
    forged = lifecycle(sub, "subscriptionRemoved", clientState="guess")
    assert client.post(LIFECYCLE, json={"value": [forged]}).status_code == 401
    unknown_event = lifecycle(sub, "somethingNew")
    assert client.post(LIFECYCLE, json={"value": [unknown_event]}).status_code == 401
    assert inbox(engine) == [] and queued("maintenance") == []
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(InboxItem)) == 0


def test_a_lifecycle_item_sent_to_the_notification_url_is_not_a_change(
    client: TestClient, engine: Engine, tenant: TenantKey
) -> None:
    sub = subscribe(engine, tenant)
    answer = client.post(HOOK, content=json.dumps({"value": [lifecycle(sub, "missed")]}))
    assert answer.status_code == 202 and answer.json() == {"recorded": 0, "rejected": 0}
