"""The calendar store's push channels: signed, numbered per channel, sent by several senders so
one slow answer does not hold up the rest, and `wait_idle` returns once every one is answered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import ServedApp, serve_in_thread
from sandbox.store.push import Channel, Pusher

SECRET = "store-channel-secret"


class Receiver:
    """Answers at once, except the first notice of channel `slow`, held until a notice of
    another channel has been answered."""

    def __init__(self) -> None:
        self.got: list[tuple[str, int, bool]] = []  # channel, message, signature good
        self.other_answered = threading.Event()

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        channel = request.headers["X-Store-Channel"]
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(request.headers["X-Store-Signature"], expected)
        message = int(request.headers["X-Store-Message"])
        assert json.loads(body)["message"] == message
        if channel == "slow" and message == 1:
            held = await asyncio.to_thread(self.other_answered.wait, 10)
            if not held:
                return Response(status_code=400)  # sent one after the other: seen as a 400
        self.got.append((channel, message, good))
        if channel != "slow":
            self.other_answered.set()
        return Response(status_code=200)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, ServedApp]]:
    made = Receiver()
    with serve_in_thread(Starlette(routes=[Route("/hook", made.receive, methods=["POST"])])) as app:
        yield made, app


def test_a_slow_answer_does_not_hold_up_the_other_notices(
    receiver: tuple[Receiver, ServedApp],
) -> None:
    got, served = receiver
    pusher = Pusher()
    for name, calendar in (("slow", "alice"), ("fast", "bob")):
        pusher.watch(Channel(name, calendar, f"{served.base_url}/hook", SECRET))
    pusher.notify("alice", "e1", "v1")  # its answer waits for bob's
    for n in range(5):
        pusher.notify("bob", f"b{n}", "v1")
    pusher.notify("alice", "e2", "v1")
    pusher.wait_idle(timeout=20)
    assert sorted(pusher.delivered) == sorted(
        [("slow", 1, 200), ("slow", 2, 200)] + [("fast", n, 200) for n in range(1, 6)]
    )
    assert sorted(got.got) == sorted((c, m, True) for c, m, _ in pusher.delivered)
    assert got.got.index(("slow", 1, True)) > got.got.index(("fast", 1, True))


def test_wait_idle_says_when_notices_are_still_being_sent(
    receiver: tuple[Receiver, ServedApp],
) -> None:
    got, served = receiver
    pusher = Pusher(senders=1)  # the slow notice holds the only sender
    pusher.watch(Channel("slow", "alice", f"{served.base_url}/hook", SECRET))
    pusher.notify("alice", "e1", "v1")
    with pytest.raises(TimeoutError):
        pusher.wait_idle(timeout=0.2)
    got.other_answered.set()
    pusher.wait_idle(timeout=20)
    assert pusher.delivered == [("slow", 1, 200)]
