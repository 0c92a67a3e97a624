"""Graph subscriptions through the provider (O365's Subscriptions over HTTP) against the sandbox,
which runs the validation handshake and delivers notifications to a receiver served here; and
the parsing of what it delivers."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from harness.microsoft import signed_in
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from providers.base import NotFound
from providers.microsoft import (
    EVENTS_RESOURCE,
    LifecycleEvent,
    MicrosoftAccount,
    SubscriptionRefused,
    parse_lifecycle,
    parse_notifications,
)
from providers.microsoft_notifications import MalformedNotification
from sandbox.graph import GraphSettings
from sandbox.graph.harness import GraphHarness, graph_harness
from sandbox.server import ServedApp, serve_in_thread

CLIENT_STATE = "a-random-client-state-kept-encrypted"


@dataclass
class Receiver:
    """What calsync's webhook routes do at the HTTP level: echo the validation token, keep
    the bodies. `/refuse` fails the handshake."""

    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        token = request.query_params.get("validationToken")
        if token is not None:
            self.validations.append(name)
            if name == "refuse":
                return Response(status_code=500)
            return PlainTextResponse(token)
        body = await request.body()
        with self.cond:
            self.bodies.setdefault(name, []).append(body)
            self.cond.notify_all()
        return Response(status_code=202)

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.bodies.get(name, [])) < count:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name}: got {self.bodies.get(name)}")
                self.cond.wait(0.05)
            return list(self.bodies[name])


@dataclass
class Push:
    graph: GraphHarness
    account: MicrosoftAccount
    receiver: Receiver
    served: ServedApp

    def url(self, name: str) -> str:
        return f"{self.served.base_url}/{name}"

    def subscribe(self, notify: str = "notify", lifecycle: str = "lifecycle") -> str:
        expires = datetime.now(UTC) + timedelta(days=2)
        sub = self.account.subscribe(
            EVENTS_RESOURCE, self.url(notify), self.url(lifecycle), CLIENT_STATE, expires
        )
        return sub.id

    def states(self, sub_id: str) -> dict[str, str]:
        return {sub_id: CLIENT_STATE}


@pytest.fixture
def push() -> Iterator[Push]:
    settings = GraphSettings(notification_retry_delays=(0.05,), validation_timeout=2.0)
    receiver = Receiver()
    served = serve_in_thread(
        Starlette(routes=[Route("/{name}", receiver.handle, methods=["POST"])])
    )
    with graph_harness(settings) as graph:
        account = signed_in(graph)
        yield Push(graph, account, receiver, served)
        account.close()
    served.stop()


def seed(push: Push, subject: str) -> str:
    body = {
        "subject": subject,
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
    }
    instance, _ = push.graph.state.create_event(push.graph.user.id, body, check_access=False)
    return instance.id


def test_subscribe_runs_the_handshake_on_both_urls(push: Push) -> None:
    expires = datetime.now(UTC) + timedelta(days=2)
    sub = push.account.subscribe(
        EVENTS_RESOURCE, push.url("notify"), push.url("lifecycle"), CLIENT_STATE, expires
    )
    assert push.receiver.validations == ["notify", "lifecycle"]
    stored = push.graph.state.subscription(sub.id)
    assert stored.client_state == CLIENT_STATE and stored.lifecycle_url == push.url("lifecycle")
    assert stored.change_types == {"created", "updated", "deleted"}
    assert abs((sub.expires_at - expires).total_seconds()) < 1
    assert sub.resource == EVENTS_RESOURCE


def test_the_client_state_stays_out_of_debug_logs(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        push.subscribe()  # O365 would log the request body, clientState included
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Requesting (POST)" in logged  # O365 did log at DEBUG
    assert CLIENT_STATE not in logged and push.account.tokens.access_token not in logged


def test_a_failed_handshake_refuses_the_subscription(push: Push) -> None:
    with pytest.raises(SubscriptionRefused):
        push.subscribe(notify="refuse")
    assert push.graph.state.active_subscriptions() == []


def test_renew_and_unsubscribe(push: Push) -> None:
    sub_id = push.subscribe()
    later = datetime.now(UTC) + timedelta(days=5)
    renewed = push.account.renew(sub_id, later)
    assert renewed.id == sub_id and abs((renewed.expires_at - later).total_seconds()) < 1
    assert abs((push.graph.state.subscription(sub_id).expiration - later).total_seconds()) < 1
    push.account.reauthorize(sub_id)
    push.account.unsubscribe(sub_id)
    assert push.graph.state.active_subscriptions() == []
    push.account.unsubscribe(sub_id)  # 404: already gone
    with pytest.raises(NotFound):  # the caller subscribes anew
        push.account.renew(sub_id, later)


def test_notifications_are_parsed_and_a_wrong_client_state_is_rejected(push: Push) -> None:
    sub_id = push.subscribe()
    event_id = seed(push, "made in Outlook")
    body = push.receiver.wait_for("notify")[0]
    valid, rejected = parse_notifications(body, push.states(sub_id).get)
    assert rejected == 0 and len(valid) == 1
    notice = valid[0]
    assert (notice.subscription_id, notice.change_type, notice.event_id) == (
        sub_id,
        "created",
        event_id,
    )
    assert notice.etag and event_id in notice.resource
    again, _ = parse_notifications(body, push.states(sub_id).get)  # Graph redelivering
    assert again[0].idempotency_key == notice.idempotency_key

    push.graph.state.faults.corrupt_client_state(1)
    seed(push, "forged")
    forged = push.receiver.wait_for("notify", 2)[1]
    valid, rejected = parse_notifications(forged, push.states(sub_id).get)
    assert (valid, rejected) == ([], 1)
    # An unknown subscription is as untrusted as a wrong state.
    assert parse_notifications(body, lambda _sub: None) == ([], 1)


def test_a_batch_keeps_the_valid_items() -> None:
    item = {
        "subscriptionId": "s1",
        "clientState": CLIENT_STATE,
        "changeType": "updated",
        "resource": "Users/u/Events/e1",
        "resourceData": {"id": "e1"},
        "subscriptionExpirationDateTime": "2030-03-19T22:11:09.952Z",
    }
    batch = {
        "value": [
            item,
            {**item, "clientState": "guess"},
            {**item, "clientState": None},
            {**item, "subscriptionId": "s2"},
        ]
    }
    valid, rejected = parse_notifications(json.dumps(batch).encode(), {"s1": CLIENT_STATE}.get)
    assert [n.event_id for n in valid] == ["e1"] and rejected == 3
    assert valid[0].subscription_expires_at == datetime(2030, 3, 19, 22, 11, 9, 952000, tzinfo=UTC)
    with pytest.raises(MalformedNotification):
        parse_notifications(b"not json", lambda _sub: None)
    with pytest.raises(MalformedNotification):
        parse_notifications(b'{"items": []}', lambda _sub: None)


@pytest.mark.parametrize("event", list(LifecycleEvent))
def test_each_lifecycle_event_is_parsed(push: Push, event: LifecycleEvent) -> None:
    sub_id = push.subscribe()
    push.graph.state.send_lifecycle_event(sub_id, event.value)
    body = push.receiver.wait_for("lifecycle")[0]
    notices, rejected = parse_lifecycle(body, push.states(sub_id).get)
    assert rejected == 0 and [(n.subscription_id, n.event) for n in notices] == [(sub_id, event)]
    assert notices[0].subscription_expires_at is not None
    assert parse_lifecycle(body, {sub_id: "other"}.get) == ([], 1)
    # Lifecycle items that reach the notification URL are not change notices.
    assert parse_notifications(body, push.states(sub_id).get) == ([], 0)
    if event is LifecycleEvent.SUBSCRIPTION_REMOVED:
        assert push.graph.state.active_subscriptions() == []
        assert push.subscribe() != sub_id  # recreated
    elif event is LifecycleEvent.REAUTHORIZATION_REQUIRED:
        push.account.reauthorize(sub_id)
        assert not push.graph.state.subscription(sub_id).needs_reauthorization
