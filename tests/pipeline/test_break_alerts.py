"""A broken connection is told to its business once: one email (a real SMTP server on loopback)
and one signed webhook (a receiver on loopback), whatever retries and runs follow, through
the real API, broker and worker processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from harness.pipeline import Pair, broker_drained
from harness.processes import Launch, wait_until
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import hash_key, new_key
from config import Settings
from models import Connection, ConnectionStatus, RunStatus, SyncRun, Tenant
from models.db import session_scope
from sandbox.server import ServedApp, free_port, serve_in_thread
from tasks.context import WorkerContext
from tasks.enqueue import request_sync

BUSINESS = "Studio Tempo"
V2 = "/bookings/v2/external-calendars"


class Mailbox(Message):
    """An SMTP server on loopback, and every email it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[EmailMessage] = []
        self.server = Controller(self, hostname="127.0.0.1", port=free_port())

    def handle_message(self, message: EmailMessage) -> None:
        self.received.append(message)

    def text(self, index: int) -> str:
        payload = self.received[index].get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode()


@dataclass
class Receiver:
    """The business's webhook: answers 503 while `failing` lasts, then 200."""

    url: str = ""
    failing: int = 0
    attempts: list[tuple[str, bytes, int]] = field(default_factory=list)  # signature, body, status
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            status = 503 if self.failing > 0 else 200
            self.failing -= status == 503
            self.attempts.append((request.headers.get("Calsync-Signature", ""), body, status))
        return Response(status_code=status)

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body, status in self.attempts if status == 200]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.server.start()
    yield box
    box.server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    with serve_in_thread(Starlette(routes=[Route("/hook", hooks.hook, methods=["POST"])])) as app:
        hooks.url = f"{app.base_url}/hook"
        yield hooks


@pytest.fixture
def pipeline_settings(pipeline_settings: Settings, mailbox: Mailbox) -> Settings:
    """Mail to the loopback SMTP server; three failed runs in a row break a connection."""
    return Settings.model_validate(pipeline_settings.model_dump() | {
        "smtp_host": "127.0.0.1", "smtp_port": mailbox.server.port,
        "smtp_from": "calsync@studio.example",
        "alert_after_failed_runs": 3,
    })  # fmt: skip


@dataclass(frozen=True)
class Business:
    """The pair's tenant, named: its API key's headers, and the webhook secret it was shown."""

    headers: dict[str, str]
    secret: str


@pytest.fixture
def business(pair: Pair, api: ServedApp, receiver: Receiver, engine: Engine
             ) -> Business:  # fmt: skip
    """The pair's business asks to be told by email and by webhook."""
    key = new_key()
    with session_scope(engine) as db:
        connection = db.get(Connection, pair.connection_id)
        assert connection is not None
        tenant = db.get(Tenant, connection.tenant_id)
        assert tenant is not None
        tenant.name, tenant.api_key_hash = BUSINESS, hash_key(key)
    headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.put(f"{api.base_url}{V2}/notification-settings", headers=headers,
                       json={"notificationSettings": {"email": "owner@studio.example",
                                                      "webhookUrl": receiver.url}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return Business(headers, str(answer.json()["webhookSecret"]))


def connection_of(engine: Engine, pair: Pair) -> Connection:
    with session_scope(engine) as db:
        found = db.get(Connection, pair.connection_id)
        assert found is not None
        db.expunge(found)
        return found


def failed_runs(engine: Engine, pair: Pair) -> int:
    query = select(func.count()).where(SyncRun.connection_id == pair.connection_id,
                                       SyncRun.status == RunStatus.FAILED)  # fmt: skip
    with engine.connect() as db:
        return int(db.scalar(query) or 0)


def fault(pair: Pair, status: int) -> None:
    httpx.post(f"{pair.store_url}/_store/faults", json={"status": status, "times": 1000})


def heal(pair: Pair) -> None:
    httpx.delete(f"{pair.store_url}/_store/faults").raise_for_status()


def resync(api: ServedApp, business: Business, pair: Pair) -> None:
    """What a person does after fixing the account (an ERROR connection is tried again)."""
    url = f"{api.base_url}{V2}/connections/{pair.connection_id}:resync"
    httpx.post(url, headers=business.headers).raise_for_status()


def verified(secret: str, signature: str, body: bytes) -> bool:
    """How docs/api.md tells a receiver to check a delivery."""
    parts = dict(item.split("=", 1) for item in signature.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def told(mailbox: Mailbox, receiver: Receiver) -> tuple[int, int]:
    return len(mailbox.received), len(receiver.accepted())


def break_by(pair: Pair, status: int, worker: Launch, context: WorkerContext) -> None:
    """The store answers `status` from now on; a worker starts and a full sync is asked for."""
    fault(pair, status)
    worker()
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)


def test_a_revoked_account_is_told_once_by_email_and_signed_webhook(
    pair: Pair, business: Business, worker: Launch, context: WorkerContext, engine: Engine,
    mailbox: Mailbox, receiver: Receiver, api: ServedApp,
) -> None:  # fmt: skip
    break_by(pair, 401, worker, context)
    wait_until(lambda: told(mailbox, receiver) == (1, 1), 60, "the email and the webhook")

    for runs in (2, 3):  # the person resyncs before fixing anything: the same refusal again
        resync(api, business, pair)
        wait_until(lambda n=runs: failed_runs(engine, pair) == n
                   and connection_of(engine, pair).status is ConnectionStatus.ERROR,
                   60, "the resync to fail again")  # fmt: skip
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)
    wait_until(lambda: broker_drained(context), 30, "the broker to drain")
    assert told(mailbox, receiver) == (1, 1)

    assert mailbox.received[0]["To"] == "owner@studio.example"
    assert BUSINESS in mailbox.received[0]["Subject"]
    text = mailbox.text(0)
    assert "calsync local store" in text and "alice" in text and "access was revoked" in text
    assert "Connect the calendar again" in text
    [(signature, body, _)] = receiver.attempts
    assert verified(business.secret, signature, body)
    assert not verified("cswh_another-secret", signature, body)
    delivered = json.loads(body)
    assert (delivered["type"], delivered["reason"]) == ("connection.broken", "TOKEN_REVOKED")
    assert delivered["connection"]["id"] == pair.connection_id
    assert delivered["business"]["name"] == BUSINESS
    assert business.secret not in text and business.secret.encode() not in body


def test_healthy_again_then_broken_again_is_told_again(
    pair: Pair, business: Business, worker: Launch, context: WorkerContext, engine: Engine,
    mailbox: Mailbox, receiver: Receiver, api: ServedApp,
) -> None:  # fmt: skip
    break_by(pair, 401, worker, context)
    wait_until(lambda: told(mailbox, receiver) == (1, 1), 60, "the first alert")

    heal(pair)
    resync(api, business, pair)
    wait_until(lambda: connection_of(engine, pair).broken_at is None, 60, "a run to go through")
    assert connection_of(engine, pair).status is ConnectionStatus.SYNCED

    fault(pair, 401)
    assert request_sync(context.gate, pair.calendar_id, "reconcile", full=True)
    wait_until(lambda: told(mailbox, receiver) == (2, 2), 60, "the second alert")
    first, second = receiver.accepted()
    assert first["id"] != second["id"] and first["brokenDate"] < second["brokenDate"]


def test_a_receiver_down_gets_the_webhook_again_and_the_email_goes_once(
    pair: Pair, business: Business, worker: Launch, context: WorkerContext, engine: Engine,
    mailbox: Mailbox, receiver: Receiver,
) -> None:  # fmt: skip
    receiver.failing = 2
    break_by(pair, 401, worker, context)
    wait_until(lambda: len(receiver.accepted()) == 1, 60, "the webhook to get through")
    wait_until(lambda: broker_drained(context), 30, "the broker to drain")

    assert len(mailbox.received) == 1
    statuses = [status for _, _, status in receiver.attempts]
    assert statuses == [503, 503, 200]
    bodies = {json.loads(body)["id"] for _, body, _ in receiver.attempts}
    assert len(bodies) == 1  # the same delivery each time: a receiver can drop repeats
    assert all(verified(business.secret, sign, body) for sign, body, _ in receiver.attempts)


def test_runs_failing_in_a_row_are_told_once_and_the_connection_keeps_trying(
    pair: Pair, business: Business, worker: Launch, context: WorkerContext, engine: Engine,
    mailbox: Mailbox, receiver: Receiver,
) -> None:  # fmt: skip
    break_by(pair, 500, worker, context)
    wait_until(lambda: told(mailbox, receiver) == (1, 1), 90, "the alert after three failures")
    [delivered] = receiver.accepted()
    assert delivered["reason"] == "REPEATED_FAILURES"
    assert "failed 3 times in a row" in mailbox.text(0)
    wait_until(lambda: failed_runs(engine, pair) >= 5, 90, "more failed retries")
    assert connection_of(engine, pair).status is not ConnectionStatus.ERROR

    heal(pair)
    wait_until(lambda: connection_of(engine, pair).broken_at is None, 60, "a retry to go through")
    assert connection_of(engine, pair).failed_runs == 0
    wait_until(lambda: broker_drained(context), 30, "the broker to drain")
    assert told(mailbox, receiver) == (1, 1)
