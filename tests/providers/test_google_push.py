"""Push channels: `watch` through the real client library, real notification POSTs from the
sandbox to a receiver on loopback, `verify_notification` on the headers that arrived, and
`stop_channel`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from harness.google import BASE, USER, WINDOW, GoogleWorld, Receiver, timed

from providers.base import PermanentError, PermanentReason
from providers.google import GoogleAccount, Verdict, verify_notification
from sandbox.server import ServedApp, serve_in_thread
from sync.event import CanonicalEvent

TOKEN = "channel-secret-5f1c"


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


def token_for(channel_id: str) -> str | None:
    return TOKEN if channel_id.startswith("chan-") else None


def test_watch_delivers_real_pushes_until_the_channel_is_stopped(
    world: GoogleWorld, account: GoogleAccount, receiving: tuple[Receiver, ServedApp]
) -> None:
    receiver = receiving[0]
    before = datetime.now(UTC)
    channel = account.watch(USER, "chan-1", TOKEN, hook(receiving), ttl_seconds=3600)
    assert channel.channel_id == "chan-1" and channel.resource_id
    assert channel.expires_at is not None
    assert before + timedelta(seconds=3590) < channel.expires_at < before + timedelta(hours=2)

    [handshake] = receiver.wait_for("chan-1", 1)
    check = verify_notification(handshake.headers, token_for)
    assert check.verdict is Verdict.GENUINE and check.http_status == 200
    assert check.notification is not None and check.notification.is_sync
    assert check.notification.message_number == 1
    assert check.notification.resource_id == channel.resource_id

    calendar = account.calendar(USER, WINDOW)
    calendar.create(CanonicalEvent("Cut", BASE, BASE + timedelta(hours=1)), "k", marker="m:c:l")
    _, change = receiver.wait_for("chan-1", 2)
    notice = verify_notification(change.headers, token_for).notification
    assert notice is not None and notice.state == "exists" and not notice.is_sync
    assert notice.message_number > 1 and notice.idempotency_key == f"chan-1:{notice.message_number}"
    assert notice.channel_expires_at is not None
    assert abs((notice.channel_expires_at - channel.expires_at).total_seconds()) < 1

    account.stop_channel(channel.channel_id, channel.resource_id)
    account.stop_channel(channel.channel_id, channel.resource_id)  # already stopped: done
    assert world.state.live_channels() == []
    world.state.insert_event(USER, {"summary": "after", **timed(BASE)})
    assert world.state.wait_for_push_idle(5)
    assert len(receiver.wait_for("chan-1", 3, timeout=0.3)) == 2  # nothing after the stop


def test_watch_default_ttl_and_a_missing_calendar(
    account: GoogleAccount, receiving: tuple[Receiver, ServedApp]
) -> None:
    channel = account.watch(USER, "chan-2", TOKEN, hook(receiving))
    assert channel.expires_at is not None
    week = datetime.now(UTC) + timedelta(seconds=604800)
    assert abs((channel.expires_at - week).total_seconds()) < 60  # Google's default: 7 days
    with pytest.raises(PermanentError) as caught:
        account.watch("gone@group.calendar.google.com", "chan-3", TOKEN, hook(receiving))
    assert caught.value.reason is PermanentReason.CALENDAR_DELETED


def genuine_headers() -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": "chan-9",
        "X-Goog-Channel-Token": TOKEN,
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": "exists",
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/a/events",
        "X-Goog-Message-Number": "17",
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
    }


def test_verify_notification_tells_genuine_unknown_forged_and_malformed_apart() -> None:
    check = verify_notification(genuine_headers(), token_for)
    assert check.verdict is Verdict.GENUINE and check.notification is not None
    assert check.notification.message_number == 17 and check.notification.state == "exists"
    assert check.notification.channel_expires_at == datetime(2030, 11, 19, 1, 13, 52, tzinfo=UTC)

    lower = {k.lower(): v for k, v in genuine_headers().items()}
    assert verify_notification(lower, token_for).verdict is Verdict.GENUINE

    wrong = verify_notification(genuine_headers() | {"X-Goog-Channel-Token": "guess"}, token_for)
    assert wrong.verdict is Verdict.WRONG_TOKEN and wrong.http_status == 401
    assert wrong.notification is None
    missing = {k: v for k, v in genuine_headers().items() if k != "X-Goog-Channel-Token"}
    assert verify_notification(missing, token_for).verdict is Verdict.WRONG_TOKEN

    unknown = verify_notification(genuine_headers() | {"X-Goog-Channel-ID": "old-1"}, token_for)
    assert unknown.verdict is Verdict.UNKNOWN_CHANNEL and unknown.http_status == 200
    no_channel = {k: v for k, v in genuine_headers().items() if k != "X-Goog-Channel-ID"}
    assert verify_notification(no_channel, token_for).verdict is Verdict.UNKNOWN_CHANNEL

    odd = verify_notification(genuine_headers() | {"X-Goog-Resource-State": "gone"}, token_for)
    assert odd.verdict is Verdict.MALFORMED and odd.http_status == 400

    sync = genuine_headers() | {"X-Goog-Resource-State": "sync", "X-Goog-Message-Number": "1"}
    handshake = verify_notification(sync, token_for).notification
    assert handshake is not None and handshake.is_sync
