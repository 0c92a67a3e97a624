"""`verify_webhook` on the bodies the Wix sandbox really sends over HTTP: genuine ones, the app
events, retries and replays, and every kind of forgery it can make."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.wix.push import InvalidReason, InvalidWebhook, WebhookKind, verify_webhook
from sandbox.server import ServedApp, serve_in_thread
from sandbox.wix import DeliveryOptions, ManualClock, WixState, create_app
from sandbox.wix.model import App


class Receiver:
    """Keeps every raw body POSTed to it; can answer 500 a few times first."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.fail_next = 0
        self._cond = threading.Condition()
        self.app = Starlette(routes=[Route("/webhooks/wix", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self._cond:
            if self.fail_next:
                self.fail_next -= 1
                return Response(status_code=500)
            self.bodies.append(body)
            self._cond.notify_all()
        return Response(status_code=200)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.bodies) < count:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"{len(self.bodies)} webhooks arrived, wanted {count}")
            return list(self.bodies)


@dataclass
class Wix:
    state: WixState
    clock: ManualClock
    app: App
    instance_id: str
    schedule_id: str
    receiver: Receiver

    def arrived(self, count: int) -> list[bytes]:
        assert self.state.webhooks.flush()
        return self.receiver.wait_for(count)

    def verify(self, body: bytes) -> Any:
        return verify_webhook(body, self.app.public_key_pem, now=self.clock())


@pytest.fixture
def wix() -> Iterator[Wix]:
    receiver = Receiver()
    hooks: ServedApp = serve_in_thread(receiver.app)
    clock = ManualClock()
    state = WixState(clock=clock, delivery=DeliveryOptions(time_scale=0.0001))
    served = serve_in_thread(create_app(state))
    app = state.add_app(webhook_url=f"{hooks.base_url}/webhooks/wix")
    site = state.install(app.app_id, time_zone="Europe/London")
    schedule = state.add_schedule(site.instance_id, "Alice")
    yield Wix(state, clock, app, site.instance_id, schedule["id"], receiver)
    state.close()
    served.stop()
    hooks.stop()


def session(wix: Wix, **fields: Any) -> dict[str, Any]:
    day = (datetime.now(UTC) + timedelta(days=8)).date()
    event = {"scheduleId": wix.schedule_id, "title": "Massage",
             "start": {"localDate": f"{day}T10:00:00"}, "end": {"localDate": f"{day}T11:00:00"},
             **fields}  # fmt: skip
    return wix.state.create_event(wix.instance_id, event)


def test_app_installed_and_removed(wix: Wix) -> None:
    installed = wix.verify(wix.arrived(1)[0])
    assert installed.kind is WebhookKind.APP_INSTALLED
    assert (installed.instance_id, installed.app_id) == (wix.instance_id, wix.app.app_id)
    wix.state.remove(wix.instance_id)
    removed = wix.verify(wix.arrived(2)[1])
    assert removed.kind is WebhookKind.APP_REMOVED and removed.instance_id == wix.instance_id
    assert removed.webhook_id != installed.webhook_id


def test_event_created_updated_cancelled(wix: Wix) -> None:
    wix.arrived(1)
    created = session(wix)
    wix.state.update_event(wix.instance_id, {"id": created["id"], "title": "Deep tissue"},
                           require_revision=False)  # fmt: skip
    wix.state.cancel_event(wix.instance_id, created["id"])
    hooks = [wix.verify(body) for body in wix.arrived(5)[1:]]
    kinds = [WebhookKind.EVENT_CREATED, WebhookKind.EVENT_UPDATED, WebhookKind.EVENT_UPDATED,
             WebhookKind.EVENT_CANCELLED]  # fmt: skip
    assert [h.kind for h in hooks] == kinds
    assert {h.event_id for h in hooks} == {created["id"]}
    assert {h.schedule_id for h in hooks} == {wix.schedule_id}
    assert {h.instance_id for h in hooks} == {wix.instance_id}
    assert [h.revision_number for h in hooks] == [1, 2, 3, 3]
    assert hooks[0].event is not None and hooks[0].event["title"] == "Massage"
    assert hooks[1].event is not None and hooks[1].event["title"] == "Deep tissue"
    assert hooks[3].event is not None and hooks[3].event["status"] == "CANCELLED"
    assert hooks[0].identity == {"identityType": "WIX_USER", "wixUserId": "sandbox-wix-user"}
    assert len({h.webhook_id for h in hooks}) == 4


def test_a_replay_and_a_retry_carry_the_same_webhook_id(wix: Wix) -> None:
    wix.arrived(1)
    wix.receiver.fail_next = 1  # the first attempt fails; Wix signs the retry afresh
    session(wix)
    first = wix.arrived(2)[1]
    original = wix.state.webhooks.latest()
    assert len(original.attempts) == 2
    wix.state.webhooks.replay(original.id)
    replayed = wix.arrived(3)[2]
    assert replayed == first
    assert wix.verify(replayed).webhook_id == wix.verify(first).webhook_id == original.data["id"]


FORGERIES = [
    ("other_key", InvalidReason.SIGNATURE),
    ("alg_none", InvalidReason.ALGORITHM),
    ("hs256", InvalidReason.ALGORITHM),
    ("expired", InvalidReason.EXPIRED),
    ("tampered", InvalidReason.SIGNATURE),
]


@pytest.mark.parametrize(("kind", "reason"), FORGERIES)
def test_forged_webhooks_are_rejected_with_the_reason(
    wix: Wix, kind: str, reason: InvalidReason
) -> None:
    wix.arrived(1)
    session(wix)
    genuine = wix.arrived(2)[1]
    assert wix.verify(genuine).kind is WebhookKind.EVENT_CREATED
    wix.state.webhooks.forge(kind)  # type: ignore[arg-type]
    forged = wix.arrived(3)[2]
    with pytest.raises(InvalidWebhook) as rejected:
        wix.verify(forged)
    assert rejected.value.reason is reason
    assert isinstance(rejected.value, ValueError)


def test_hs256_with_any_secret_and_a_signed_none_are_refused(wix: Wix) -> None:
    claims = {"data": "{}", "iat": int(time.time()), "exp": int(time.time()) + 600}
    hs = jwt.encode(claims, "a-shared-secret-of-enough-length-for-hmac", algorithm="HS256")
    for body in (hs, jwt.encode(claims, "", algorithm="none")):
        with pytest.raises(InvalidWebhook) as rejected:
            wix.verify(body.encode())
        assert rejected.value.reason is InvalidReason.ALGORITHM


def test_a_genuine_webhook_fails_with_another_apps_key_or_once_expired(wix: Wix) -> None:
    body = wix.arrived(1)[0]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(InvalidWebhook) as wrong_key:
        verify_webhook(body, pem, now=wix.clock())
    assert wrong_key.value.reason is InvalidReason.SIGNATURE
    later = wix.clock() + timedelta(minutes=11)  # Wix's tokens live 10 minutes
    with pytest.raises(InvalidWebhook) as expired:
        verify_webhook(body, wix.app.public_key_pem, now=later)
    assert expired.value.reason is InvalidReason.EXPIRED
    assert verify_webhook(body.decode(), wix.app.public_key_pem, now=wix.clock()).instance_id


def test_garbage_and_unusable_keys(wix: Wix) -> None:
    body = wix.arrived(1)[0]
    for junk in (b"", b"not a jwt", b"a.b.c"):
        with pytest.raises(InvalidWebhook) as rejected:
            wix.verify(junk)
        assert rejected.value.reason is InvalidReason.MALFORMED
    with pytest.raises(InvalidWebhook) as bad_key:
        verify_webhook(body, "not a PEM", now=wix.clock())
    assert bad_key.value.reason is InvalidReason.KEY


def test_a_signed_body_that_is_not_the_envelope_is_malformed(wix: Wix) -> None:
    from sandbox.wix.signing import claims

    wix.arrived(1)
    for data in ("not json", '{"eventType": "x"}', '["a list"]'):
        token = wix.app.key.sign(claims(data, wix.clock(), timedelta(minutes=10)))
        with pytest.raises(InvalidWebhook) as rejected:
            wix.verify(token.encode())
        assert rejected.value.reason is InvalidReason.MALFORMED
    other = '{"eventType":"wix.contacts.v4.contact_created","instanceId":"i","data":"{}"}'
    token = wix.app.key.sign(claims(other, wix.clock(), timedelta(minutes=10)))
    assert wix.verify(token.encode()).kind is WebhookKind.OTHER
