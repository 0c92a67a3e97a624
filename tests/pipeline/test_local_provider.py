"""The `local` provider against the HTTP calendar store: the same error mapping as real ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from harness.clock import days_ahead
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.errors import (
    CursorExpired,
    PreconditionFailed,
    RateLimited,
    TransientError,
    retry_after_seconds,
)
from providers.local.calendar import LocalCalendar
from providers.local.push import RECEIVER
from providers.push import Delivery
from sandbox.server import ServedApp, serve_in_thread
from sandbox.store import StoreState, create_app
from sync.event import CanonicalEvent

START = days_ahead(1, 9)


def event(title: str = "Dentist", hours: int = 0) -> CanonicalEvent:
    return CanonicalEvent(title=title, start=START + timedelta(hours=hours),
                          end=START + timedelta(hours=hours + 1))  # fmt: skip


@pytest.fixture
def store() -> Iterator[tuple[StoreState, ServedApp]]:
    state = StoreState()
    state.add_calendar("alice")
    with serve_in_thread(create_app(state)) as served:
        yield state, served


@pytest.fixture
def calendar(store: tuple[StoreState, ServedApp]) -> Iterator[LocalCalendar]:
    with httpx.Client() as http:
        yield LocalCalendar(store[1].base_url, "alice", http)


def test_writes_are_idempotent_and_conditional(calendar: LocalCalendar) -> None:
    first = calendar.create(event(), "link-1:0", marker="calsync:c:link-1")
    again = calendar.create(event(), "link-1:0", marker="calsync:c:link-1")
    assert again.id == first.id  # a retried create finds the first copy
    updated = calendar.update(first.id, event("Dentist (moved)", 2), first.version)
    assert updated.event is not None and updated.event.title == "Dentist (moved)"
    with pytest.raises(PreconditionFailed):
        calendar.update(first.id, event("stale"), first.version)
    calendar.delete(first.id, updated.version)
    calendar.delete(first.id, updated.version)  # already gone: done


def test_changes_since_a_cursor_and_an_expired_cursor(
    calendar: LocalCalendar, store: tuple[StoreState, ServedApp]
) -> None:
    full = calendar.list_changes(None)
    assert full.complete and full.changes == ()
    made = calendar.create(event(), "k:0", marker="m")
    page = calendar.list_changes(full.next_cursor)
    assert not page.complete and [c.id for c in page.changes] == [made.id]
    store[0].calendar("alice").expire_cursors()
    with pytest.raises(CursorExpired):
        calendar.list_changes(page.next_cursor)


def test_throttling_and_outages_are_transient(
    calendar: LocalCalendar, store: tuple[StoreState, ServedApp]
) -> None:
    httpx.post(f"{store[1].base_url}/_store/faults", json={"status": 429, "retryAfter": 1.5})
    with pytest.raises(RateLimited) as limited:
        calendar.list_changes(None)
    assert limited.value.retry_after == 1.5
    httpx.post(f"{store[1].base_url}/_store/faults", json={"status": 503})
    with pytest.raises(TransientError):
        calendar.list_changes(None)
    assert calendar.list_changes(None).complete


def test_retry_after_accepts_seconds_and_dates() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    assert retry_after_seconds("3") == 3.0
    http_date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(http_date, now=now) == 30.0
    assert retry_after_seconds("garbage") is None


def test_push_notifications_are_signed(store: tuple[StoreState, ServedApp]) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        base = store[1].base_url
        httpx.post(f"{base}/_store/channels", json={
            "id": "ch-1", "calendar": "alice", "address": f"{receiver.base_url}/hook",
            "secret": "s3cret",
        })  # fmt: skip
        body = {"event": {"title": "Lunch", "start": START.isoformat(),
                          "end": (START + timedelta(hours=1)).isoformat()}}  # fmt: skip
        httpx.post(f"{base}/_store/calendars/alice/events", json=body)
        store[0].pusher.wait_idle()
    assert len(received) == 1
    headers, raw = received[0]
    delivery = Delivery({k.lower(): v for k, v in headers.items()}, {}, raw)
    [notice] = RECEIVER.notices(delivery)
    assert (notice.channel_id, notice.key, notice.payload["message"]) == ("ch-1", "ch-1:1", 1)
    assert RECEIVER.genuine(notice, delivery, "s3cret")
    assert not RECEIVER.genuine(notice, delivery, "guessed")
    tampered = Delivery(delivery.headers, {}, raw.replace(b"alice", b"mallory"))
    assert not RECEIVER.genuine(RECEIVER.notices(tampered)[0], tampered, "s3cret")
    unreadable = Delivery(delivery.headers, {}, b"[[[")
    assert [n.readable for n in RECEIVER.notices(unreadable)] == [False]
    assert json.loads(raw)["message"] == 1
