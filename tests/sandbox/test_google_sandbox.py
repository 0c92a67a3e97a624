"""The Google Calendar sandbox, driven by the real google-api-python-client and google-auth over
HTTP.

The sandbox and a push receiver are served on loopback ports; every assertion is on a real response
or a real notification POST.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import google.auth.exceptions
import google.oauth2.credentials
import google_auth_httplib2
import httplib2
import httpx
import jwt
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.google import GoogleOptions, GoogleState, PushSettings, create_app
from sandbox.server import ServedApp, serve_in_thread

USER = "alice@example.com"
CLIENT_ID = "calsync-test.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret-0123456789abcdef"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
SCOPE = "https://www.googleapis.com/auth/calendar openid email"


# -- servers and clients ---------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def number(self) -> int:
        return int(self.headers["x-goog-message-number"])

    @property
    def state(self) -> str:
        return self.headers["x-goog-resource-state"]


class Receiver:
    """A webhook endpoint that records every POST and answers scripted statuses (default 200)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.statuses: deque[int] = deque()
        self._cond = threading.Condition()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._cond:
                self.messages.append(Received(dict(request.headers), body))
                self._cond.notify_all()
                status = self.statuses.popleft() if self.statuses else 200
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def for_channel(self, channel_id: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.headers["x-goog-channel-id"] == channel_id]

    def wait_for(self, channel_id: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.for_channel(channel_id)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.for_channel(channel_id)

    def reset(self) -> None:
        with self._cond:
            self.messages.clear()
            self.statuses.clear()


@pytest.fixture(scope="module")
def state() -> Iterator[GoogleState]:
    push = PushSettings(max_attempts=3, backoff_seconds=0.01, timeout_seconds=2)
    google = GoogleState(GoogleOptions(push=push, seed=7))
    yield google
    google.close()


@pytest.fixture(scope="module")
def server(state: GoogleState) -> Iterator[ServedApp]:
    with serve_in_thread(create_app(state)) as served:
        yield served


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, ServedApp]]:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as served:
        yield receiver, served


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, ServedApp]) -> Receiver:
    receiver_server[0].reset()
    return receiver_server[0]


@pytest.fixture
def hook_url(receiver_server: tuple[Receiver, ServedApp]) -> str:
    return receiver_server[1].base_url + "/hook"


@pytest.fixture(autouse=True)
def fresh(state: GoogleState) -> Iterator[None]:
    state.reset()
    state.options = GoogleOptions(push=state.options.push, seed=7)
    state.clock.reset()
    state.add_account(USER, time_zone="Europe/Berlin")
    state.add_client(CLIENT_ID, CLIENT_SECRET, (REDIRECT,))
    yield
    assert state.wait_for_push_idle(5)


def credentials(server: ServedApp, tokens: dict[str, Any]) -> google.oauth2.credentials.Credentials:
    return google.oauth2.credentials.Credentials(
        token=tokens.get("access_token"),
        refresh_token=tokens.get("refresh_token"),
        token_uri=server.base_url + "/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )


def calendar_service(server: ServedApp, creds: Any = None, http: Any = None) -> Any:
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        client_options={"api_endpoint": server.base_url + "/calendar/v3/"},
        credentials=creds,
        http=http,
    )


@pytest.fixture
def service(state: GoogleState, server: ServedApp) -> Any:
    return calendar_service(server, credentials(server, state.issue_tokens(USER, CLIENT_ID)))


def http_error(call: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        call.execute()
    return caught.value


def reason(error: HttpError) -> str:
    return str(error.error_details[0]["reason"])


def timed(start: datetime, hours: float = 1, tz: str = "Europe/Berlin") -> dict[str, Any]:
    end = start + timedelta(hours=hours)
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": tz},
        "end": {"dateTime": end.isoformat(), "timeZone": tz},
    }


def list_all(service: Any, **params: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Follow nextPageToken to the end; returns the items and the last page."""
    items: list[dict[str, Any]] = []
    page = service.events().list(calendarId="primary", **params).execute()
    items += page["items"]
    while "nextPageToken" in page:
        assert "nextSyncToken" not in page
        page = (
            service.events()
            .list(calendarId="primary", pageToken=page["nextPageToken"], **params)
            .execute()
        )
        items += page["items"]
    return items, page


BASE = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)


# -- events: writes, conditions, errors ------------------------------------------------------


def test_insert_get_update_patch_delete_with_etags(service: Any) -> None:
    body = {"summary": "Cut", "description": "long", **timed(BASE)}
    created = service.events().insert(calendarId="primary", body=body).execute()
    assert created["status"] == "confirmed" and created["sequence"] == 0
    assert created["iCalUID"] and created["created"] and created["etag"].startswith('"')
    fetched = service.events().get(calendarId="primary", eventId=created["id"]).execute()
    assert fetched == created

    stale = created["etag"]
    update = service.events().update(
        calendarId="primary", eventId=created["id"], body={"summary": "Colour", **timed(BASE)}
    )
    update.headers["If-Match"] = stale
    updated = update.execute()
    assert updated["summary"] == "Colour" and "description" not in updated  # update replaces
    assert updated["etag"] != stale and updated["created"] == created["created"]

    again = service.events().update(
        calendarId="primary", eventId=created["id"], body={"summary": "x", **timed(BASE)}
    )
    again.headers["If-Match"] = stale
    error = http_error(again)
    assert error.status_code == 412 and reason(error) == "conditionNotMet"

    moved = service.events().patch(
        calendarId="primary", eventId=created["id"], body={"location": "Salon", **timed(BASE, 2)}
    )
    moved.headers["If-Match"] = updated["etag"]
    patched = moved.execute()
    assert patched["summary"] == "Colour" and patched["location"] == "Salon"  # patch merges
    assert patched["sequence"] == 1  # the time changed

    not_modified = service.events().get(calendarId="primary", eventId=created["id"])
    not_modified.headers["If-None-Match"] = patched["etag"]
    assert http_error(not_modified).status_code == 304

    assert service.events().delete(calendarId="primary", eventId=created["id"]).execute() == ""
    error = http_error(service.events().delete(calendarId="primary", eventId=created["id"]))
    assert error.status_code == 410 and reason(error) == "deleted"
    gone = service.events().get(calendarId="primary", eventId=created["id"]).execute()
    assert gone["status"] == "cancelled"  # get always returns deleted events


def test_client_ids_are_checked_and_unique_even_after_delete(service: Any) -> None:
    body = {"id": "booking0001", "summary": "Booked", **timed(BASE)}
    service.events().insert(calendarId="primary", body=body).execute()
    error = http_error(service.events().insert(calendarId="primary", body=body))
    assert error.status_code == 409 and reason(error) == "duplicate"

    service.events().delete(calendarId="primary", eventId="booking0001").execute()
    error = http_error(service.events().insert(calendarId="primary", body=body))
    assert error.status_code == 409

    bad = {**body, "id": "Not_Base32hex"}
    assert http_error(service.events().insert(calendarId="primary", body=bad)).status_code == 400
    short = {**body, "id": "ab1"}
    assert http_error(service.events().insert(calendarId="primary", body=short)).status_code == 400


def test_bodies_are_checked_against_the_discovery_schema(service: Any) -> None:
    unknown = {"summary": "x", "colour": "red", **timed(BASE)}
    error = http_error(service.events().insert(calendarId="primary", body=unknown))
    assert error.status_code == 400 and "colour" in error.error_details[0]["message"]

    wrong_type = {"summary": 5, **timed(BASE)}
    assert (
        http_error(service.events().insert(calendarId="primary", body=wrong_type)).status_code
        == 400
    )

    nested = {"summary": "x", "start": {"dateTime": BASE.isoformat(), "zone": "UTC"}, "end": {}}
    assert http_error(service.events().insert(calendarId="primary", body=nested)).status_code == 400

    reversed_times = timed(BASE)
    reversed_times["end"] = reversed_times["start"] | {
        "dateTime": (BASE - timedelta(hours=1)).isoformat()
    }
    error = http_error(service.events().insert(calendarId="primary", body=reversed_times))
    assert reason(error) == "timeRangeEmpty"


def test_extended_properties_are_stored_and_filterable(service: Any) -> None:
    tagged = {
        "summary": "mine",
        "extendedProperties": {"private": {"calsync": "wix-1", "k" * 45: "dropped"}},
        **timed(BASE),
    }
    created = service.events().insert(calendarId="primary", body=tagged).execute()
    assert created["extendedProperties"]["private"] == {"calsync": "wix-1"}  # long key dropped
    service.events().insert(
        calendarId="primary", body={"summary": "other", **timed(BASE)}
    ).execute()

    found = (
        service.events()
        .list(calendarId="primary", privateExtendedProperty="calsync=wix-1")
        .execute()
    )
    assert [e["id"] for e in found["items"]] == [created["id"]]

    patched = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=created["id"],
            body={"extendedProperties": {"private": {"calsync": None, "other": "1"}}},
        )
        .execute()
    )
    assert patched["extendedProperties"]["private"] == {"other": "1"}  # null removes a key


def test_time_window_bounds(service: Any) -> None:
    event = (
        service.events()
        .insert(calendarId="primary", body={"summary": "w", **timed(BASE)})
        .execute()
    )
    end = (BASE + timedelta(hours=1)).isoformat()

    def ids(**window: str) -> list[str]:
        return [
            e["id"]
            for e in service.events().list(calendarId="primary", **window).execute()["items"]
        ]

    assert ids(timeMin=end) == []  # timeMin is exclusive on the end
    assert ids(timeMax=BASE.isoformat()) == []  # timeMax is exclusive on the start
    assert ids(timeMin=BASE.isoformat(), timeMax=end) == [event["id"]]


def test_writes_to_a_reader_calendar_are_forbidden(state: GoogleState, service: Any) -> None:
    state.add_account("bob@example.com")
    shared = state.add_calendar("bob@example.com", summary="Bob's shifts")
    state.share_calendar(shared, USER, "reader")
    state.insert_event(shared, {"summary": "Shift", **timed(BASE)})

    entries = {e["id"]: e for e in service.calendarList().list().execute()["items"]}
    assert entries[USER]["accessRole"] == "owner" and entries[USER]["primary"] is True
    assert entries[shared]["accessRole"] == "reader" and "primary" not in entries[shared]
    assert [e["summary"] for e in service.events().list(calendarId=shared).execute()["items"]] == [
        "Shift"
    ]
    error = http_error(
        service.events().insert(calendarId=shared, body={"summary": "x", **timed(BASE)})
    )
    assert error.status_code == 403 and reason(error) == "forbidden"
    assert http_error(service.events().list(calendarId="nobody@example.com")).status_code == 404


# -- sync tokens and pages -------------------------------------------------------------------


def test_full_sync_in_pages_then_incremental_changes(service: Any, state: GoogleState) -> None:
    made = [
        service.events()
        .insert(calendarId="primary", body={"summary": f"e{i}", **timed(BASE + timedelta(days=i))})
        .execute()
        for i in range(5)
    ]
    first = service.events().list(calendarId="primary", maxResults=2).execute()
    assert len(first["items"]) == 2 and "nextPageToken" in first and "nextSyncToken" not in first
    items, last = list_all(service, maxResults=2)
    assert sorted(e["id"] for e in items) == sorted(e["id"] for e in made)
    token = last["nextSyncToken"]

    service.events().patch(
        calendarId="primary", eventId=made[0]["id"], body={"summary": "moved"}
    ).execute()
    service.events().delete(calendarId="primary", eventId=made[1]["id"]).execute()
    state.insert_event(USER, {"summary": "from the Google UI", **timed(BASE)})  # outside calsync

    changes, last = list_all(service, syncToken=token, maxResults=2)
    by_id = {e["id"]: e for e in changes}
    assert len(changes) == 3
    assert by_id[made[0]["id"]]["summary"] == "moved"
    deleted = by_id[made[1]["id"]]
    assert deleted["status"] == "cancelled" and "summary" not in deleted  # only id guaranteed
    assert any(e.get("summary") == "from the Google UI" for e in changes)

    quiet = service.events().list(calendarId="primary", syncToken=last["nextSyncToken"]).execute()
    assert quiet["items"] == [] and "nextSyncToken" in quiet


@pytest.mark.parametrize(
    "param",
    [
        {"timeMin": "2030-01-01T00:00:00Z"},
        {"timeMax": "2030-01-01T00:00:00Z"},
        {"q": "cut"},
        {"orderBy": "updated"},
        {"iCalUID": "x@google.com"},
        {"updatedMin": "2030-01-01T00:00:00Z"},
        {"privateExtendedProperty": "a=b"},
        {"sharedExtendedProperty": "a=b"},
        {"showDeleted": False},
    ],
)
def test_sync_token_refuses_restrictions(service: Any, param: dict[str, Any]) -> None:
    token = service.events().list(calendarId="primary").execute()["nextSyncToken"]
    error = http_error(service.events().list(calendarId="primary", syncToken=token, **param))
    assert error.status_code == 400


def test_expired_sync_tokens_answer_410(service: Any, state: GoogleState) -> None:
    def fresh_token() -> str:
        return str(service.events().list(calendarId="primary").execute()["nextSyncToken"])

    def assert_gone(token: str) -> None:
        error = http_error(service.events().list(calendarId="primary", syncToken=token))
        assert error.status_code == 410 and reason(error) == "fullSyncRequired"
        assert error.error_details[0]["domain"] == "calendar"

    state.options.sync_token_ttl = 60
    token = fresh_token()
    service.events().list(calendarId="primary", syncToken=token).execute()  # still valid
    state.clock.advance(61)
    assert_gone(token)

    state.options.sync_token_ttl = None
    state.faults.expire_next_sync_token()
    token = fresh_token()
    assert_gone(token)
    assert_gone(token)  # once invalid, always invalid

    token = fresh_token()
    assert state.expire_sync_tokens(calendar_id=USER) >= 1
    assert_gone(token)


# -- recurring events ------------------------------------------------------------------------


def test_single_events_expansion_with_moved_and_cancelled_instances(service: Any) -> None:
    series_body = {
        "summary": "Weekly",
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"],
        "start": {"dateTime": "2030-03-04T10:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-03-04T11:00:00", "timeZone": "Europe/Berlin"},
    }
    series = service.events().insert(calendarId="primary", body=series_body).execute()
    token = (
        service.events().list(calendarId="primary", singleEvents=True).execute()["nextSyncToken"]
    )
    instances = (
        service.events().instances(calendarId="primary", eventId=series["id"]).execute()["items"]
    )
    assert [i["id"] for i in instances] == [
        f"{series['id']}_20300304T090000Z",
        f"{series['id']}_20300306T090000Z",
        f"{series['id']}_20300311T090000Z",
        f"{series['id']}_20300313T090000Z",
    ]
    assert instances[1]["recurringEventId"] == series["id"]
    assert instances[1]["originalStartTime"]["dateTime"].startswith("2030-03-06T10:00:00+01:00")

    moved = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=instances[1]["id"],
            body={
                "start": {"dateTime": "2030-03-06T15:00:00+01:00"},
                "end": {"dateTime": "2030-03-06T16:00:00+01:00"},
            },
        )
        .execute()
    )
    assert moved["originalStartTime"] == instances[1]["originalStartTime"]
    service.events().delete(calendarId="primary", eventId=instances[2]["id"]).execute()

    listed = (
        service.events()
        .list(calendarId="primary", singleEvents=True, orderBy="startTime")
        .execute()["items"]
    )
    assert [i["id"] for i in listed] == [instances[0]["id"], instances[1]["id"], instances[3]["id"]]
    assert listed[1]["start"]["dateTime"].startswith("2030-03-06T15:00:00")

    with_deleted = (
        service.events()
        .list(calendarId="primary", singleEvents=True, showDeleted=True)
        .execute()["items"]
    )
    assert {i["id"]: i["status"] for i in with_deleted}[instances[2]["id"]] == "cancelled"

    changes = (
        service.events()
        .list(calendarId="primary", singleEvents=True, syncToken=token)
        .execute()["items"]
    )
    cancelled = next(c for c in changes if c["id"] == instances[2]["id"])
    assert cancelled["status"] == "cancelled" and cancelled["recurringEventId"] == series["id"]
    assert cancelled["originalStartTime"] == instances[2]["originalStartTime"]

    # Without singleEvents: the series itself, the moved exception and the cancelled one.
    plain = service.events().list(calendarId="primary").execute()["items"]
    assert {e["id"] for e in plain} == {series["id"], instances[1]["id"], instances[2]["id"]}


def test_all_day_series_with_until_and_exdate(service: Any) -> None:
    body = {
        "summary": "Closed",
        "start": {"date": "2030-05-01"},
        "end": {"date": "2030-05-02"},
        "recurrence": ["RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20300509", "EXDATE;VALUE=DATE:20300505"],
    }
    series = service.events().insert(calendarId="primary", body=body).execute()
    items = (
        service.events().instances(calendarId="primary", eventId=series["id"]).execute()["items"]
    )
    assert [i["id"] for i in items] == [
        f"{series['id']}_{d}" for d in ("20300501", "20300503", "20300507", "20300509")
    ]
    assert items[0]["start"] == {"date": "2030-05-01"} and items[0]["end"] == {"date": "2030-05-02"}
    error = http_error(
        service.events().get(calendarId="primary", eventId=f"{series['id']}_20300505")
    )
    assert error.status_code == 404


def test_series_changes_reach_incremental_single_events(service: Any) -> None:
    body = {
        "summary": "Daily",
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        "start": {"dateTime": "2030-06-03T08:00:00+02:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-06-03T09:00:00+02:00", "timeZone": "Europe/Berlin"},
    }
    series = service.events().insert(calendarId="primary", body=body).execute()
    _, last = list_all(service, singleEvents=True)
    ids = [f"{series['id']}_2030060{d}T060000Z" for d in (3, 4, 5)]

    service.events().patch(
        calendarId="primary",
        eventId=series["id"],
        body={"recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]},
    ).execute()
    changes, last = list_all(service, singleEvents=True, syncToken=last["nextSyncToken"])
    assert {c["id"]: c["status"] for c in changes} == dict(
        zip(ids, ["confirmed", "confirmed", "cancelled"], strict=True)
    )

    service.events().delete(calendarId="primary", eventId=series["id"]).execute()
    changes, _ = list_all(service, singleEvents=True, syncToken=last["nextSyncToken"])
    assert {c["id"]: c["status"] for c in changes} == {i: "cancelled" for i in ids[:2]}
    assert all(c["recurringEventId"] == series["id"] for c in changes)


# -- push notifications ----------------------------------------------------------------------


def watch(service: Any, hook_url: str, channel_id: str, **extra: Any) -> dict[str, Any]:
    body = {"id": channel_id, "type": "web_hook", "address": hook_url, **extra}
    return dict(service.events().watch(calendarId="primary", body=body).execute())


def test_watch_sends_sync_then_exists_messages(
    service: Any, receiver: Receiver, hook_url: str, server: ServedApp
) -> None:
    channel = watch(service, hook_url, "chan-1", token="tenant=1", params={"ttl": "3600"})
    assert channel["kind"] == "api#channel" and channel["resourceId"]
    assert channel["resourceUri"].startswith(server.base_url + "/calendar/v3/calendars/")
    expiration = int(channel["expiration"])
    assert 3590_000 < expiration - time.time() * 1000 <= 3600_000

    (sync,) = receiver.wait_for("chan-1", 1)
    assert sync.state == "sync" and sync.number == 1 and sync.body == b""

    for i in range(2):
        service.events().insert(
            calendarId="primary", body={"summary": f"n{i}", **timed(BASE)}
        ).execute()
    messages = receiver.wait_for("chan-1", 3)
    assert [m.state for m in messages] == ["sync", "exists", "exists"]
    numbers = [m.number for m in messages]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    headers = messages[-1].headers
    assert headers["x-goog-channel-token"] == "tenant=1"
    assert headers["x-goog-resource-id"] == channel["resourceId"]
    assert headers["x-goog-resource-uri"] == channel["resourceUri"]
    sent_expiry = parsedate_to_datetime(headers["x-goog-channel-expiration"])
    assert abs(sent_expiry.timestamp() * 1000 - expiration) < 1000


def test_stopped_and_expired_channels_get_no_more_messages(
    service: Any, state: GoogleState, receiver: Receiver, hook_url: str
) -> None:
    channel = watch(service, hook_url, "chan-stop")
    watch(service, hook_url, "chan-expire", params={"ttl": "60"})
    assert receiver.wait_for("chan-stop", 1)
    assert receiver.wait_for("chan-expire", 1)  # its opening, before the clock passes its end
    assert (
        service.channels()
        .stop(body={"id": "chan-stop", "resourceId": channel["resourceId"]})
        .execute()
        == ""
    )
    state.clock.advance(61)

    service.events().insert(
        calendarId="primary", body={"summary": "quiet", **timed(BASE)}
    ).execute()
    assert state.wait_for_push_idle(5)
    assert [m.state for m in receiver.for_channel("chan-stop")] == ["sync"]
    assert [m.state for m in receiver.for_channel("chan-expire")] == ["sync"]

    error = http_error(service.channels().stop(body={"id": "chan-stop", "resourceId": "wrong"}))
    assert error.status_code == 404


def test_overlapping_channels_are_both_notified(
    service: Any, receiver: Receiver, hook_url: str
) -> None:
    watch(service, hook_url, "old-channel")
    watch(service, hook_url, "new-channel")
    error = http_error(
        service.events().watch(
            calendarId="primary",
            body={"id": "new-channel", "type": "web_hook", "address": hook_url},
        )
    )
    assert error.status_code == 400  # channel ids are unique
    service.events().insert(calendarId="primary", body={"summary": "both", **timed(BASE)}).execute()
    for channel_id in ("old-channel", "new-channel"):
        assert [m.state for m in receiver.wait_for(channel_id, 2)] == ["sync", "exists"]


def test_dropped_notification_and_retried_delivery(
    service: Any, state: GoogleState, receiver: Receiver, hook_url: str
) -> None:
    watch(service, hook_url, "chan-drop")
    receiver.wait_for("chan-drop", 1)
    state.faults.drop_notifications(1)
    service.events().insert(calendarId="primary", body={"summary": "lost", **timed(BASE)}).execute()
    receiver.statuses.extend([503])  # the next delivery fails once, then is retried
    service.events().insert(calendarId="primary", body={"summary": "kept", **timed(BASE)}).execute()
    assert state.wait_for_push_idle(5)

    messages = receiver.for_channel("chan-drop")
    assert [m.state for m in messages] == ["sync", "exists", "exists"]  # one 503, one retry
    assert messages[1].number == messages[2].number
    deliveries = sorted(
        (d for d in state.deliveries() if d.channel_id == "chan-drop"), key=lambda d: d.number
    )
    outcomes = [(d.outcome, d.attempts) for d in deliveries]
    assert outcomes == [("delivered", 1), ("dropped", 0), ("delivered", 2)]


def test_watch_refuses_addresses_off_loopback(service: Any) -> None:
    body = {"id": "far", "type": "web_hook", "address": "https://example.com/hook"}
    error = http_error(service.events().watch(calendarId="primary", body=body))
    assert error.status_code == 400


# -- faults ----------------------------------------------------------------------------------


def test_rate_limits_and_server_errors(service: Any, state: GoogleState) -> None:
    listing = service.events().list(calendarId="primary")
    state.faults.rate_limit()
    error = http_error(listing)
    assert error.status_code == 403 and reason(error) == "rateLimitExceeded"
    assert error.error_details[0]["domain"] == "usageLimits"

    state.faults.rate_limit(reason="userRateLimitExceeded")
    assert reason(http_error(listing)) == "userRateLimitExceeded"

    state.faults.rate_limit(status=429, retry_after=3)
    error = http_error(listing)
    assert error.status_code == 429 and error.resp["retry-after"] == "3"

    state.faults.fail(status=503)
    assert http_error(listing).status_code == 503
    state.faults.fail(status=500, match="/events")
    listing._sleep = lambda seconds: None  # the client's backoff, not under test here
    assert "items" in listing.execute(num_retries=1)  # the client's own retry gets through

    state.faults.set_quota(2, window_seconds=60)
    listing.execute()
    listing.execute()
    assert reason(http_error(listing)) == "userRateLimitExceeded"
    state.clock.advance(61)
    assert "items" in listing.execute()


# -- OAuth -----------------------------------------------------------------------------------


def consent(server: ServedApp, **extra: str) -> dict[str, list[str]]:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "access_type": "offline",
        "state": "xyz",
        **extra,
    }
    answer = httpx.get(f"{server.base_url}/o/oauth2/v2/auth?{urlencode(params)}", trust_env=False)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def test_oauth_round_trip_refresh_and_revocation(server: ServedApp, state: GoogleState) -> None:
    granted = consent(server)
    assert granted["state"] == ["xyz"]
    exchange = {
        "grant_type": "authorization_code",
        "code": granted["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    tokens = httpx.post(f"{server.base_url}/token", data=exchange, trust_env=False).json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] and tokens["id_token"]
    claims = jwt.decode(tokens["id_token"], CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
    assert claims["email"] == USER
    reused = httpx.post(f"{server.base_url}/token", data=exchange, trust_env=False)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    userinfo = httpx.get(
        f"{server.base_url}/oauth2/v3/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        trust_env=False,
    ).json()
    assert userinfo["email"] == USER

    creds = credentials(server, {"refresh_token": tokens["refresh_token"]})  # no access token yet
    service = calendar_service(server, creds)
    assert service.calendarList().get(calendarId="primary").execute()["id"] == USER
    assert creds.token and creds.token != tokens["access_token"]  # google-auth refreshed

    state.clock.advance(3601)  # the access token expires; the client refreshes on the 401
    assert service.calendars().get(calendarId="primary").execute()["id"] == USER

    state.revoke_access(USER)
    with pytest.raises(google.auth.exceptions.RefreshError) as caught:
        creds.refresh(google_auth_httplib2.Request(httplib2.Http()))
    assert "invalid_grant" in str(caught.value)


def test_consent_can_be_denied_and_refresh_token_comes_once(server: ServedApp) -> None:
    denied = consent(server, sandbox_decision="deny")
    assert denied["error"] == ["access_denied"] and "code" not in denied

    def exchange(code: str) -> dict[str, Any]:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        return dict(httpx.post(f"{server.base_url}/token", data=data, trust_env=False).json())

    assert "refresh_token" in exchange(consent(server)["code"][0])
    assert "refresh_token" not in exchange(consent(server)["code"][0])  # already consented
    assert "refresh_token" in exchange(consent(server, prompt="consent")["code"][0])


def test_api_requires_a_valid_bearer_token(server: ServedApp) -> None:
    anonymous = calendar_service(server, http=httplib2.Http())
    error = http_error(anonymous.events().list(calendarId="primary"))
    assert error.status_code == 401

    listing = anonymous.events().list(calendarId="primary")
    listing.headers["Authorization"] = "Bearer ya29.bogus"
    error = http_error(listing)
    assert error.status_code == 401 and reason(error) == "authError"


# -- admin routes ----------------------------------------------------------------------------


def test_admin_routes_drive_a_sandbox_over_http(server: ServedApp, state: GoogleState) -> None:
    admin = httpx.Client(base_url=server.base_url + "/_sandbox", trust_env=False)
    assert admin.post("/accounts", json={"email": "carol@example.com"}).json()["calendarId"] == (
        "carol@example.com"
    )
    event = admin.post(
        "/calendars/carol@example.com/events", json={"summary": "seeded", **timed(BASE)}
    ).json()
    tokens = admin.post(
        "/tokens", json={"email": "carol@example.com", "clientId": CLIENT_ID}
    ).json()
    service = calendar_service(server, credentials(server, tokens))
    assert (
        service.events().get(calendarId="primary", eventId=event["id"]).execute()["summary"]
        == "seeded"
    )

    assert admin.post("/faults/rate-limit", json={"status": 429}).status_code == 200
    assert http_error(service.events().list(calendarId="primary")).status_code == 429
    assert admin.patch("/options", json={"syncTokenTtl": 5}).json()["syncTokenTtl"] == 5
    assert admin.post("/clock", json={"advanceSeconds": 10}).status_code == 200
    assert admin.post("/faults/fail", json={"status": 200}).status_code == 400
    assert admin.delete("/faults").json()["planned"] == []
    stored = admin.get("/calendars/carol@example.com/events").json()["items"]
    assert [e["id"] for e in stored] == [event["id"]]
