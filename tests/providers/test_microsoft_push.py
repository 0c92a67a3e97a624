"""Graph subscriptions as the account's push channels (O365's Subscriptions over HTTP) against the
sandbox, which runs the validation handshake and delivers notifications to a receiver served
here; and Graph's `PushReceiver` on what it delivers."""

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

from providers.base import Channel
from providers.microsoft.account import MicrosoftAccount
from providers.microsoft.push import RECEIVER, LifecycleEvent
from providers.microsoft.subscriptions import EVENTS_RESOURCE, SubscriptionRefused
from providers.push import ChannelEvent, Delivery, MalformedDelivery, Notice, Tally
from sandbox.graph import GraphSettings
from sandbox.graph.harness import GraphHarness, graph_harness
from sandbox.server import ServedApp, serve_in_thread

CLIENT_STATE = "a-client-state-as-calsync-makes-them"


@dataclass
class Receiver:
    """What calsync's webhook routes do at the HTTP level: echo the validation token, keep
    the bodies (by the last part of the path). `/refuse` fails the handshake."""

    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle(self, request: Request) -> Response:
        name = request.url.path.rsplit("/", 1)[1]
        token = request.query_params.get("validationToken")
        if token is not None:
            self.validations.append(name)
            if "refuse" in request.url.path:
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

    def url(self, name: str = "notify") -> str:
        return f"{self.served.base_url}/{name}"

    def subscribe(self, notify: str = "notify") -> Channel:
        return self.account.open_channel("any calendar", self.url(notify))


def read(body: bytes, path: str = "") -> tuple[Delivery, list[Notice]]:
    delivery = Delivery({}, {}, body, path)
    return delivery, RECEIVER.notices(delivery)


def checked(body: bytes, secrets: dict[str, str], path: str = "") -> Tally:
    """What the API makes of the notices, told the stored clientStates."""
    delivery, notices = read(body, path)
    tally = Tally()
    for notice in notices:
        secret = secrets.get(notice.channel_id)
        if secret is None:
            tally.unknown += 1
        elif not RECEIVER.genuine(notice, delivery, secret):
            tally.forged += 1
        elif not notice.readable:
            tally.unreadable += 1
        else:
            tally.recorded += 1
    return tally


@pytest.fixture
def push() -> Iterator[Push]:
    settings = GraphSettings(notification_retry_delays=(0.05,), validation_timeout=2.0)
    receiver = Receiver()
    served = serve_in_thread(Starlette(routes=[
        Route("/{name}", receiver.handle, methods=["POST"]),
        Route("/{name}/lifecycle", receiver.handle, methods=["POST"]),
    ]))  # fmt: skip
    with graph_harness(settings) as graph:
        account = signed_in(graph)
        yield Push(graph, account, receiver, served)
        account.close()
    served.stop()


def seed(push: Push, subject: str) -> str:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    body = {
        "subject": subject,
        "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
        "end": {"dateTime": f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
    }
    instance, _ = push.graph.state.create_event(push.graph.user.id, body, check_access=False)
    return instance.id


def test_opening_a_channel_runs_the_handshake_on_both_urls(push: Push) -> None:
    before = datetime.now(UTC)
    channel = push.subscribe()
    assert push.receiver.validations == ["notify", "lifecycle"]
    stored = push.graph.state.subscription(channel.channel_id)
    assert stored.client_state == channel.secret and len(channel.secret) >= 32
    assert stored.lifecycle_url == push.url("notify/lifecycle")
    assert stored.change_types == {"created", "updated", "deleted"}
    assert timedelta(minutes=4190) < channel.expires_at - before <= timedelta(minutes=4201)
    assert channel.resource_id == EVENTS_RESOURCE


def test_the_client_state_stays_out_of_debug_logs(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        channel = push.subscribe()  # O365 would log the request body, clientState included
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Requesting (POST)" in logged  # O365 did log at DEBUG
    assert channel.secret not in logged and push.account.tokens.access_token not in logged


def test_a_failed_handshake_refuses_the_subscription(push: Push) -> None:
    with pytest.raises(SubscriptionRefused):
        push.subscribe(notify="refuse")
    assert push.graph.state.active_subscriptions() == []


def test_renewal_extends_in_place_and_a_removed_subscription_is_made_anew(push: Push) -> None:
    channel = push.subscribe()
    renewed = push.account.renew_channel(channel, "any calendar", push.url())
    assert (renewed.channel_id, renewed.secret) == (channel.channel_id, channel.secret)
    stored = push.graph.state.subscription(channel.channel_id).expiration
    assert abs((stored - renewed.expires_at).total_seconds()) < 1
    push.account.stop_channel(channel)
    assert push.graph.state.active_subscriptions() == []
    push.account.stop_channel(channel)  # 404: already gone
    fresh = push.account.renew_channel(channel, "any calendar", push.url())
    assert fresh.channel_id != channel.channel_id and fresh.secret != channel.secret
    assert [s.id for s in push.graph.state.active_subscriptions()] == [fresh.channel_id]


def test_notifications_are_read_and_a_wrong_client_state_is_rejected(push: Push) -> None:
    channel = push.subscribe()
    secrets = {channel.channel_id: channel.secret}
    event_id = seed(push, "made in Outlook")
    body = push.receiver.wait_for("notify")[0]
    delivery, [notice] = read(body)
    assert RECEIVER.genuine(notice, delivery, channel.secret)
    assert (notice.channel_id, notice.payload["change"], notice.event_id) == (
        channel.channel_id, "created", event_id)  # fmt: skip
    assert notice.version and notice.event is ChannelEvent.CHANGED
    _, [again] = read(body)  # Graph redelivering
    assert again.key == notice.key

    push.graph.state.faults.corrupt_client_state(1)
    seed(push, "forged")
    forged = push.receiver.wait_for("notify", 2)[1]
    assert checked(forged, secrets).forged == 1
    # An unknown subscription is as untrusted as a wrong state.
    assert checked(body, {}).unknown == 1


def test_a_batch_keeps_the_valid_items() -> None:
    item = {
        "subscriptionId": "s1",
        "clientState": CLIENT_STATE,
        "changeType": "updated",
        "resource": "Users/u/Events/e1",
        "resourceData": {"id": "e1"},
    }
    batch = {"value": [item, {**item, "clientState": "guess"}, {**item, "clientState": None},
                       {**item, "subscriptionId": "s2"}, {**item, "changeType": 3}]}  # fmt: skip
    tally = checked(json.dumps(batch).encode(), {"s1": CLIENT_STATE})
    assert (tally.recorded, tally.forged, tally.unknown, tally.unreadable) == (1, 2, 1, 1)
    assert RECEIVER.answer(tally).body == {"recorded": 1, "rejected": 4}
    assert RECEIVER.answer(Tally(forged=2)).status == 401
    for malformed in (b"not json", b'{"items": []}', b"[" * 100_000):
        with pytest.raises(MalformedDelivery):
            read(malformed)


@pytest.mark.parametrize("event", list(LifecycleEvent))
def test_each_lifecycle_event_is_read(push: Push, event: LifecycleEvent) -> None:
    channel = push.subscribe()
    secrets = {channel.channel_id: channel.secret}
    push.graph.state.send_lifecycle_event(channel.channel_id, event.value)
    body = push.receiver.wait_for("lifecycle")[0]
    delivery, [notice] = read(body, "lifecycle")
    assert RECEIVER.genuine(notice, delivery, channel.secret)
    assert notice.payload == {"subscription": channel.channel_id, "lifecycle": event.value}
    wanted = {LifecycleEvent.MISSED: ChannelEvent.RESYNC,
              LifecycleEvent.REAUTHORIZATION_REQUIRED: ChannelEvent.RENEW,
              LifecycleEvent.SUBSCRIPTION_REMOVED: ChannelEvent.REOPEN}  # fmt: skip
    assert notice.event is wanted[event]
    assert checked(body, {channel.channel_id: "other"}, "lifecycle").forged == 1
    # Lifecycle items that reach the notification URL are not change notices.
    assert read(body)[1] == [] and checked(body, secrets) == Tally()
    if event is LifecycleEvent.SUBSCRIPTION_REMOVED:
        assert push.graph.state.active_subscriptions() == []
        fresh = push.account.renew_channel(channel, "any calendar", push.url())
        assert fresh.channel_id != channel.channel_id  # made anew
    elif event is LifecycleEvent.REAUTHORIZATION_REQUIRED:
        push.account.renew_channel(channel, "any calendar", push.url())  # also reauthorizes
        assert not push.graph.state.subscription(channel.channel_id).needs_reauthorization
