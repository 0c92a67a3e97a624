"""Push channels: `open_channel` (`events.watch`) through the real client library, real
notification POSTs from the sandbox to a receiver on loopback, Google's `PushReceiver` on the
headers that arrived, renewal, and `stop_channel`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from harness.google import BASE, USER, WINDOW, GoogleWorld, Receiver, timed

from providers.base import CalendarInfo
from providers.errors import PermanentError, PermanentReason
from providers.google.account import GoogleAccount
from providers.google.push import RECEIVER
from providers.push import Delivery, Notice, Reply, Tally
from sandbox.server import ServedApp, serve_in_thread
from sync.event import CanonicalEvent

TOKEN = "channel-secret-5f1c"  # a channel token, as calsync gives one


@pytest.fixture(scope="module")
def receiving() -> Iterator[tuple[Receiver, ServedApp]]:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as served:
        yield receiver, served


@pytest.fixture(autouse=True)
def fresh(world: GoogleWorld) -> None:
    world.reset()


@pytest.fixture
def account(world: GoogleWorld) -> GoogleAccount:
    return world.account()


def hook(receiving: tuple[Receiver, ServedApp]) -> str:
    return receiving[1].base_url + "/hook"


def read(headers: dict[str, str]) -> Notice:
    [notice] = RECEIVER.notices(delivery(headers))
    return notice


def delivery(headers: dict[str, str]) -> Delivery:
    return Delivery({k.lower(): v for k, v in headers.items()}, {}, b"")


def test_watch_delivers_real_pushes_until_the_channel_is_stopped(
    world: GoogleWorld, account: GoogleAccount, receiving: tuple[Receiver, ServedApp]
) -> None:
    receiver = receiving[0]
    before = datetime.now(UTC)
    channel = account.open_channel(USER, hook(receiving), ttl_seconds=3600)
    assert channel.channel_id and channel.resource_id and len(channel.secret) >= 32
    assert before + timedelta(seconds=3590) < channel.expires_at < before + timedelta(hours=2)

    [handshake] = receiver.wait_for(channel.channel_id, 1)
    opening = read(handshake.headers)
    assert RECEIVER.genuine(opening, delivery(handshake.headers), channel.secret)
    assert opening.opening and opening.payload["message"] == 1

    calendar = account.calendar(CalendarInfo(USER), WINDOW)
    calendar.create(CanonicalEvent("Cut", BASE, BASE + timedelta(hours=1)), "k", marker="m:c:l")
    _, change = receiver.wait_for(channel.channel_id, 2)
    notice = read(change.headers)
    assert notice.payload["state"] == "exists" and not notice.opening
    assert notice.key == f"{channel.channel_id}:{notice.payload['message']}"
    assert RECEIVER.genuine(notice, delivery(change.headers), channel.secret)

    account.stop_channel(channel)
    account.stop_channel(channel)  # already stopped: done
    assert world.state.live_channels() == []
    world.state.insert_event(USER, {"summary": "after", **timed(BASE)})
    assert world.state.wait_for_push_idle(5)
    assert len(receiver.wait_for(channel.channel_id, 2)) == 2  # nothing after the stop


def test_renewing_opens_a_new_channel_and_stops_the_old_one(
    world: GoogleWorld, account: GoogleAccount, receiving: tuple[Receiver, ServedApp]
) -> None:
    old = account.open_channel(USER, hook(receiving))
    fresh = account.renew_channel(old, USER, hook(receiving))
    assert fresh.channel_id != old.channel_id and fresh.secret != old.secret
    assert [c["id"] for c in world.state.live_channels()] == [fresh.channel_id]


def test_watch_default_ttl_and_a_missing_calendar(
    account: GoogleAccount, receiving: tuple[Receiver, ServedApp]
) -> None:
    channel = account.open_channel(USER, hook(receiving))
    week = datetime.now(UTC) + timedelta(seconds=604800)
    assert abs((channel.expires_at - week).total_seconds()) < 60  # Google's default: 7 days
    with pytest.raises(PermanentError) as caught:
        account.open_channel("gone@group.calendar.google.com", hook(receiving))
    assert caught.value.reason is PermanentReason.CALENDAR_DELETED


def genuine_headers() -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": "chan-9",
        "X-Goog-Channel-Token": TOKEN,
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": "exists",
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/a/events",
        "X-Goog-Message-Number": "17",
    }


def test_notices_carry_their_channel_token_and_unreadable_ones_are_marked() -> None:
    notice = read(genuine_headers())
    assert (notice.channel_id, notice.key, notice.readable) == ("chan-9", "chan-9:17", True)
    assert notice.payload == {"channel": "chan-9", "message": 17, "state": "exists"}
    assert RECEIVER.genuine(notice, delivery(genuine_headers()), TOKEN)
    assert not RECEIVER.genuine(notice, delivery(genuine_headers()), "another-token")
    missing = {k: v for k, v in genuine_headers().items() if k != "X-Goog-Channel-Token"}
    assert not RECEIVER.genuine(read(missing), delivery(missing), TOKEN)
    odd = read(genuine_headers() | {"X-Goog-Resource-State": "gone"})
    assert not odd.readable and odd.channel_id == "chan-9"
    sync = read(genuine_headers() | {"X-Goog-Resource-State": "sync", "X-Goog-Message-Number": "1"})
    assert sync.opening


def test_answers_tell_google_what_to_do() -> None:
    assert RECEIVER.answer(Tally(forged=1)).status == 401
    assert RECEIVER.answer(Tally(unreadable=1)).status == 400
    assert RECEIVER.answer(Tally(unknown=1)) == Reply(200, {"ignored": "unknown_channel"})
    assert RECEIVER.answer(Tally(stale=1)) == Reply(200, {"ignored": "unknown_channel"})
    assert RECEIVER.answer(Tally(openings=1)) == Reply(200, {"sync": True})
    assert RECEIVER.answer(Tally(duplicates=1)) == Reply(200, {"duplicate": True})
    assert RECEIVER.answer(Tally(recorded=1)) == Reply(200, {"duplicate": False})
