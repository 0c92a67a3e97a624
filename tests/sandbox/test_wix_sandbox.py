"""The Wix sandbox over real HTTP: tokens, Calendar V3 events, recurrence, signed webhooks, faults.

Webhooks land on a tiny Starlette receiver that verifies each body with pyjwt and the app's public
key, the way calsync's webhook endpoint will.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import ServedApp, serve_in_thread
from sandbox.wix import FORGERIES, Actor, DeliveryOptions, ManualClock, WixState, create_app
from sandbox.wix.model import BOOKINGS_APP_ID, SYNC_NAMESPACE

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


# ---------------------------------------------------------------- the webhook receiver


@dataclass
class Received:
    body: str
    header: dict[str, Any]
    verified: bool
    error: str | None = None
    envelope: dict[str, Any] | None = None  # eventType, instanceId, data (dict), identity (dict)
    repeated: bool = False  # inner webhook id seen before

    @property
    def data(self) -> dict[str, Any]:
        assert self.envelope is not None
        return self.envelope["data"]


class Receiver:
    """Verifies RS256 with the published key, then decodes the nested-string envelope."""

    def __init__(self) -> None:
        self.public_key_pem = ""
        self.fail_next = 0
        self.delay = 0.0
        self.received: list[Received] = []
        self._seen: set[str] = set()
        self._cond = threading.Condition()
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    def reset(self, public_key_pem: str) -> None:
        with self._cond:
            self.public_key_pem, self.fail_next, self.delay = public_key_pem, 0, 0.0
            self.received, self._seen = [], set()

    async def _hook(self, request: Request) -> Response:
        import asyncio

        body = (await request.body()).decode()
        if self.delay:
            await asyncio.sleep(self.delay)
        record = self._verify(body)
        with self._cond:
            if self.fail_next:
                self.fail_next -= 1
                return Response(status_code=500)
            if record.envelope is not None:
                record.repeated = record.data.get("id") in self._seen
                self._seen.add(record.data.get("id", ""))
            self.received.append(record)
            self._cond.notify_all()
        return Response(status_code=200)

    def _verify(self, body: str) -> Received:
        header = jwt.get_unverified_header(body)
        try:
            claims = jwt.decode(body, self.public_key_pem, algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            return Received(body, header, verified=False, error=type(exc).__name__)
        outer = json.loads(claims["data"])
        envelope = dict(
            outer, data=json.loads(outer["data"]), identity=json.loads(outer["identity"])
        )
        return Received(body, header, verified=True, envelope=envelope)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"got {len(self.received)} webhooks, wanted {count}")
                self._cond.wait(remaining)
            return list(self.received)

    def events(self) -> list[Received]:
        return [r for r in self.received if r.envelope and r.data.get("entityFqdn")]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    served = serve_in_thread(hooks.app)
    yield hooks, f"{served.base_url}/hook"
    served.stop()


# ---------------------------------------------------------------- the sandbox


@dataclass
class Wix:
    state: WixState
    served: ServedApp
    app_id: str
    secret: str
    instance_id: str
    schedule_id: str
    hooks: Receiver
    client: httpx.Client
    closers: list[Callable[[], None]] = field(default_factory=list)

    def delivered(self) -> list[Received]:
        """Every webhook received, once the sandbox has nothing left to send."""
        assert self.state.webhooks.flush()
        return list(self.hooks.received)

    def token(self, **overrides: str) -> httpx.Response:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": self.secret,
            "instance_id": self.instance_id,
            **overrides,
        }
        return httpx.post(f"{self.served.base_url}/oauth2/token", json=body, trust_env=False)

    def create(self, **event: Any) -> dict[str, Any]:
        event.setdefault("scheduleId", self.schedule_id)
        response = self.client.post("/calendar/v3/events", json={"event": event})
        assert response.status_code == 200, response.text
        return response.json()["event"]

    def query(self, **request: Any) -> dict[str, Any]:
        response = self.client.post("/calendar/v3/events/query", json=request)
        assert response.status_code == 200, response.text
        return response.json()


def start_sandbox(
    hooks: Receiver,
    hook_url: str,
    *,
    clock: Callable[[], datetime] | None = None,
    delivery: DeliveryOptions | None = None,
    time_zone: str = "UTC",
) -> Wix:
    state = WixState(clock=clock, delivery=delivery or DeliveryOptions(time_scale=0.0001))
    app = state.add_app(webhook_url=hook_url)
    hooks.reset(app.public_key_pem)
    site = state.install(app.app_id, time_zone=time_zone)
    schedule = state.add_schedule(site.instance_id, "Alice", external_id="staff-alice")
    served = serve_in_thread(create_app(state))
    wix = Wix(
        state,
        served,
        app.app_id,
        app.secret,
        site.instance_id,
        schedule["id"],
        hooks,
        httpx.Client(base_url=served.base_url, trust_env=False),
    )
    wix.client.headers["Authorization"] = wix.token().json()["access_token"]
    assert state.webhooks.flush()
    hooks.wait_for(1)  # AppInstalled
    hooks.reset(app.public_key_pem)
    return wix


def stop_sandbox(wix: Wix) -> None:
    wix.client.close()
    wix.served.stop()
    wix.state.close()


@pytest.fixture
def wix(receiver: tuple[Receiver, str]) -> Iterator[Wix]:
    sandbox = start_sandbox(*receiver)
    yield sandbox
    stop_sandbox(sandbox)


def upcoming(weekday: int = 0, weeks: int = 1) -> date:
    """The first `weekday` (0 = Monday) at least `weeks` weeks from today (UTC)."""
    day = datetime.now(UTC).date() + timedelta(weeks=weeks)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def at(day: date, hour: int, minute: int = 0) -> dict[str, str]:
    return {"localDate": f"{day.isoformat()}T{hour:02d}:{minute:02d}:00"}


def window(first: date, days: int) -> dict[str, str]:
    return {
        "fromLocalDate": f"{first.isoformat()}T00:00:00",
        "toLocalDate": f"{(first + timedelta(days=days)).isoformat()}T00:00:00",
    }


def error_code(response: httpx.Response) -> str:
    details = response.json()["details"]
    if "validationError" in details:
        return "INVALID_ARGUMENT"
    return str(details["applicationError"]["code"])


# ---------------------------------------------------------------- tokens


def test_token_endpoint_issues_a_four_hour_bearer_token(wix: Wix) -> None:
    response = wix.token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 14400
    bare = {"Authorization": body["access_token"]}
    prefixed = {"Authorization": f"Bearer {body['access_token']}"}
    for headers in (bare, prefixed):
        got = httpx.get(
            f"{wix.served.base_url}/calendar/v3/schedules/{wix.schedule_id}",
            headers=headers,
            trust_env=False,
        )
        assert got.status_code == 200
        assert got.json()["schedule"]["externalId"] == "staff-alice"


def test_token_endpoint_refuses_bad_requests(wix: Wix) -> None:
    assert wix.token(client_secret="wrong").status_code == 401
    assert error_code(wix.token(client_secret="wrong")) == "INVALID_CLIENT"
    assert wix.token(client_id="someone-else").status_code == 401
    assert wix.token(grant_type="authorization_code").status_code == 400
    assert wix.token(instance_id="not-installed").status_code == 403
    wix.state.remove(wix.instance_id)
    assert error_code(wix.token()) == "APP_NOT_INSTALLED"


def test_calls_without_a_valid_token_get_401(wix: Wix) -> None:
    url = f"{wix.served.base_url}/calendar/v3/events/query"
    for headers in ({}, {"Authorization": "nonsense"}):
        response = httpx.post(url, json={}, headers=headers, trust_env=False)
        assert response.status_code == 401
        assert response.json()["details"]["applicationError"]["code"] == "UNAUTHENTICATED"


def test_tokens_expire_after_14400_seconds(receiver: tuple[Receiver, str]) -> None:
    clock = ManualClock()
    wix = start_sandbox(*receiver, clock=clock)
    try:
        clock.advance(14399)
        assert wix.client.post("/calendar/v3/events/query", json={}).status_code == 200
        clock.advance(1)
        expired = wix.client.post("/calendar/v3/events/query", json={})
        assert expired.status_code == 401 and error_code(expired) == "TOKEN_EXPIRED"
    finally:
        stop_sandbox(wix)


# ---------------------------------------------------------------- single events


def test_event_fields_time_zones_and_get(receiver: tuple[Receiver, str]) -> None:
    wix = start_sandbox(*receiver, time_zone="America/New_York")
    try:
        event = wix.create(
            title="Massage",
            start=at(date(2031, 7, 1), 10),
            end=at(date(2031, 7, 1), 11),
            timeZone="Europe/London",
            type="APPOINTMENT",
            location={"type": "CUSTOM", "name": "Studio", "address": "1 High St"},
            notes="Bring a mat",
        )
        assert event["recurrenceType"] == "NONE" and event["status"] == "CONFIRMED"
        assert event["revision"] == "1" and event["appId"] == wix.app_id
        assert event["start"] == {
            "localDate": "2031-07-01T10:00:00",
            "timeZone": "Europe/London",
            "utcDate": "2031-07-01T09:00:00Z",
        }
        assert event["adjustedStart"]["localDate"] == "2031-07-01T05:00:00"  # the business's zone
        assert event["externalScheduleId"] == "staff-alice" and event["scheduleName"] == "Alice"
        assert event["transparency"] == "BUSY" and event["allDay"] is False
        got = wix.client.get(f"/calendar/v3/events/{event['id']}")
        assert got.json()["event"] == event
        all_day = wix.create(
            start=at(date(2031, 7, 2), 0), end=at(date(2031, 7, 3), 0), allDay=True
        )
        assert all_day["title"] == "Alice"  # defaults to the schedule's name
        missing = wix.client.get("/calendar/v3/events/nope")
        assert missing.status_code == 404 and error_code(missing) == "EVENT_NOT_FOUND"
        bad = wix.client.post(
            "/calendar/v3/events",
            json={
                "event": {
                    "scheduleId": wix.schedule_id,
                    "start": at(date(2031, 7, 1), 11),
                    "end": at(date(2031, 7, 1), 10),
                }
            },
        )
        assert bad.status_code == 400
        assert (
            bad.json()["details"]["validationError"]["fieldViolations"][0]["field"] == "event.end"
        )
    finally:
        stop_sandbox(wix)


def test_updates_need_the_current_revision(wix: Wix) -> None:
    day = upcoming()
    event = wix.create(title="Yoga", start=at(day, 9), end=at(day, 10))
    url = f"/calendar/v3/events/{event['id']}"
    moved = wix.client.patch(
        url, json={"event": {"revision": "1", "start": at(day, 11), "end": at(day, 12)}}
    )
    assert moved.status_code == 200
    assert moved.json()["event"]["revision"] == "2"
    assert moved.json()["event"]["title"] == "Yoga"  # untouched fields stay
    stale = wix.client.patch(url, json={"event": {"revision": "1", "title": "Pilates"}})
    assert stale.status_code == 409 and error_code(stale) == "REVISION_MISMATCH"
    missing = wix.client.patch(url, json={"event": {"title": "Pilates"}})
    assert missing.status_code == 428 and error_code(missing) == "REVISION_REQUIRED"
    retitled = wix.client.patch(url, json={"event": {"revision": 2, "title": "Pilates"}})
    assert retitled.json()["event"]["revision"] == "3"
    assert retitled.json()["event"]["start"]["localDate"].endswith("T11:00:00")


def test_cancel_event(wix: Wix) -> None:
    day = upcoming()
    event = wix.create(start=at(day, 9), end=at(day, 10))
    cancelled = wix.client.post(f"/calendar/v3/events/{event['id']}/cancel", json={})
    assert cancelled.status_code == 200
    assert cancelled.json()["event"]["status"] == "CANCELLED"
    assert cancelled.json()["event"]["revision"] == "2"
    again = wix.client.post(f"/calendar/v3/events/{event['id']}/cancel", json={})
    assert again.status_code == 428 and error_code(again) == "EVENT_CANCELLED"
    assert wix.query(**window(day, 1))["events"] == []
    with_cancelled = wix.query(**window(day, 1), query={"filter": {"status": "CANCELLED"}})
    assert [e["id"] for e in with_cancelled["events"]] == [event["id"]]


def test_query_window_schedule_filter_and_cursor_paging(wix: Wix) -> None:
    other = wix.state.add_schedule(wix.instance_id, "Bob")["id"]
    day = upcoming()
    ids = [wix.create(start=at(day, 8 + i), end=at(day, 9 + i))["id"] for i in range(5)]
    wix.create(scheduleId=other, start=at(day, 9), end=at(day, 10))
    wix.create(scheduleId=other, start=at(day, 12), end=at(day, 13))
    wix.create(start=at(day + timedelta(days=3), 9), end=at(day + timedelta(days=3), 10))

    seen, cursor, pages = [], None, 0
    while True:
        paging: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = wix.query(
            **window(day, 1),
            query={"filter": {"scheduleId": {"$eq": wix.schedule_id}}, "cursorPaging": paging},
        )
        seen += [e["id"] for e in page["events"]]
        pages += 1
        meta = page["pagingMetadata"]
        assert meta["count"] == len(page["events"])
        if not meta["hasNext"]:
            break
        cursor = meta["cursors"]["next"]
    assert seen == ids and pages == 3  # sorted by start, nothing skipped or repeated
    both = wix.query(
        **window(day, 1), query={"filter": {"scheduleId": {"$in": [wix.schedule_id, other]}}}
    )
    assert len(both["events"]) == 7
    starts = [e["start"]["utcDate"] for e in both["events"]]
    assert starts == sorted(starts)
    assert len(wix.query(**window(day, 4))["events"]) == 8


def test_bulk_create_update_cancel(wix: Wix) -> None:
    day = upcoming()
    created = wix.client.post(
        "/calendar/v3/bulk/events/create",
        json={
            "events": [
                {
                    "event": {
                        "scheduleId": wix.schedule_id,
                        "title": "A",
                        "start": at(day, 9),
                        "end": at(day, 10),
                    }
                },
                {
                    "event": {
                        "scheduleId": "no-such-schedule",
                        "start": at(day, 9),
                        "end": at(day, 10),
                    }
                },
                {
                    "event": {
                        "scheduleId": wix.schedule_id,
                        "title": "B",
                        "start": at(day, 11),
                        "end": at(day, 12),
                    }
                },
            ],
            "returnEntity": True,
        },
    ).json()
    assert created["bulkActionMetadata"] == {
        "totalSuccesses": 2,
        "totalFailures": 1,
        "undetailedFailures": 0,
    }
    ok = [r for r in created["results"] if r["itemMetadata"]["success"]]
    assert [r["itemMetadata"]["originalIndex"] for r in ok] == [0, 2]
    assert created["results"][1]["itemMetadata"]["error"]["code"] == "SCHEDULE_NOT_FOUND"
    a, b = (r["item"] for r in ok)

    updated = wix.client.post(
        "/calendar/v3/bulk/events/update",
        json={
            "events": [
                {
                    "event": {
                        "id": a["id"],
                        "revision": a["revision"],
                        "title": "A2",
                        "notes": "kept out",
                    },
                    "fieldmask": {"paths": ["title"]},
                },
                {"event": {"id": b["id"], "revision": "7", "title": "B2"}, "fieldmask": ["title"]},
            ],
            "returnEntity": True,
        },
    ).json()
    first, second = updated["results"]
    assert first["item"]["title"] == "A2" and "notes" not in first["item"]
    assert second["itemMetadata"]["error"]["code"] == "REVISION_MISMATCH"

    cancelled = wix.client.post(
        "/calendar/v3/bulk/events/cancel",
        json={"eventIds": [a["id"], "missing"], "returnEntity": True},
    ).json()
    assert cancelled["results"][0]["item"]["status"] == "CANCELLED"
    assert cancelled["results"][1]["itemMetadata"] == {
        "id": "missing",
        "originalIndex": 1,
        "success": False,
        "error": {"code": "EVENT_NOT_FOUND", "description": "event 'missing' not found"},
    }


def test_bulk_results_carry_events_only_when_asked_and_updates_take_50(wix: Wix) -> None:
    day = upcoming()
    event = {"scheduleId": wix.schedule_id, "start": at(day, 9), "end": at(day, 10)}
    created = wix.client.post(
        "/calendar/v3/bulk/events/create", json={"events": [{"event": event}]}
    )
    (result,) = created.json()["results"]
    assert result["itemMetadata"]["success"] and "item" not in result
    made = wix.client.get(f"/calendar/v3/events/{result['itemMetadata']['id']}").json()["event"]
    masked = {"event": {"id": made["id"], "revision": made["revision"], "title": "T"},
              "fieldmask": ["title"]}  # fmt: skip
    too_many = wix.client.post("/calendar/v3/bulk/events/update", json={"events": [masked] * 51})
    assert too_many.status_code == 400 and error_code(too_many) == "INVALID_ARGUMENT"
    fifty = wix.client.post("/calendar/v3/bulk/events/update", json={"events": [masked] * 50})
    codes = [r["itemMetadata"].get("error", {}).get("code") for r in fifty.json()["results"]]
    assert codes == [None] + ["REVISION_MISMATCH"] * 49
    cancelled = wix.client.post("/calendar/v3/bulk/events/cancel", json={"eventIds": [made["id"]]})
    assert "item" not in cancelled.json()["results"][0]


# ---------------------------------------------------------------- recurrence


def weekly(wix: Wix, day: date, **rule: Any) -> dict[str, Any]:
    return wix.create(
        title="Spin class",
        start=at(day, 18),
        end=at(day, 19),
        recurrenceRule={
            "frequency": "WEEKLY",
            "interval": 1,
            "days": [WEEKDAYS[day.weekday()]],
            **rule,
        },
    )


def test_weekly_master_expands_into_instances(wix: Wix) -> None:
    first = upcoming(weekday=2)
    until = first + timedelta(weeks=6)
    master = weekly(wix, first, interval=2, until={"localDate": f"{until}T00:00:00"})
    assert master["recurrenceType"] == "MASTER"
    assert master["recurrenceRule"]["days"] == ["WEDNESDAY"]

    found = wix.query(**window(first, 60))["events"]
    assert [e["start"]["localDate"][:10] for e in found] == [
        str(first + timedelta(weeks=w)) for w in (0, 2, 4, 6)
    ]
    assert {e["recurrenceType"] for e in found} == {"INSTANCE"}
    for instance in found:
        assert instance["recurringEventId"] == master["id"]
        assert instance["id"].startswith(master["id"] + "_")
        assert instance["originalStart"] == instance["start"]
        assert "recurrenceRule" not in instance
    single = wix.client.get(f"/calendar/v3/events/{found[1]['id']}").json()["event"]
    assert single == found[1]
    masters = wix.query(**window(first, 60), recurrenceType=["MASTER"])["events"]
    assert [e["id"] for e in masters] == [master["id"]]


def test_recurrence_rules_wix_does_not_allow(wix: Wix) -> None:
    monday = upcoming(weekday=0)
    base = {"scheduleId": wix.schedule_id, "start": at(monday, 9), "end": at(monday, 10)}
    rules = [
        {"frequency": "DAILY"},
        {"frequency": "WEEKLY", "days": ["MONDAY", "TUESDAY"]},
        {"frequency": "WEEKLY", "days": ["TUESDAY"]},  # start is a Monday
    ]
    for rule in rules:
        response = wix.client.post(
            "/calendar/v3/events", json={"event": {**base, "recurrenceRule": rule}}
        )
        assert response.status_code == 400, rule
    past = datetime.now(UTC).date() - timedelta(days=7)
    response = wix.client.post(
        "/calendar/v3/events",
        json={
            "event": {
                **base,
                "start": at(past, 9),
                "end": at(past, 10),
                "recurrenceRule": {"frequency": "WEEKLY"},
            }
        },
    )
    assert response.status_code == 400  # a MASTER can't start on a past date


def test_one_moved_and_one_cancelled_occurrence(wix: Wix) -> None:
    first = upcoming(weekday=0)
    master = weekly(wix, first)
    instances = wix.query(**window(first, 28))["events"]
    moved, dropped = instances[1], instances[2]

    response = wix.client.patch(
        f"/calendar/v3/events/{moved['id']}",
        json={
            "event": {
                "revision": moved["revision"],
                "start": at(first + timedelta(weeks=1, days=1), 7),
                "end": at(first + timedelta(weeks=1, days=1), 8),
            }
        },
    )
    exception = response.json()["event"]
    assert exception["id"] == moved["id"] and exception["recurrenceType"] == "EXCEPTION"
    assert exception["originalStart"] == moved["start"]
    assert exception["recurringEventId"] == master["id"]
    assert int(exception["revision"]) > int(moved["revision"])

    retitled = wix.client.patch(
        f"/calendar/v3/events/{moved['id']}",
        json={"event": {"revision": exception["revision"], "title": "Still an exception"}},
    ).json()["event"]
    assert retitled["recurrenceType"] == "EXCEPTION"  # permanently

    gone = wix.client.post(f"/calendar/v3/events/{dropped['id']}/cancel", json={}).json()["event"]
    assert gone["status"] == "CANCELLED" and gone["recurrenceType"] == "EXCEPTION"

    after = wix.query(**window(first, 28))["events"]
    assert [(e["id"], e["recurrenceType"]) for e in after] == [
        (instances[0]["id"], "INSTANCE"),
        (moved["id"], "EXCEPTION"),
        (instances[3]["id"], "INSTANCE"),
    ]
    assert after[1]["start"]["localDate"] == f"{first + timedelta(weeks=1, days=1)}T07:00:00"
    assert wix.client.get(f"/calendar/v3/events/{dropped['id']}").json()["event"]["status"] == (
        "CANCELLED"
    )


def test_master_changes_reach_only_future_occurrences(receiver: tuple[Receiver, str]) -> None:
    clock = ManualClock()
    wix = start_sandbox(*receiver, clock=clock)
    try:
        first = upcoming(weekday=4)
        master = weekly(wix, first)
        two_past = datetime.combine(first + timedelta(weeks=2), datetime.min.time(), UTC)
        clock.advance((two_past - clock()).total_seconds())  # two occurrences are now past
        wix.client.headers["Authorization"] = wix.token().json()["access_token"]
        response = wix.client.patch(
            f"/calendar/v3/events/{master['id']}",
            json={
                "event": {
                    "revision": master["revision"],
                    "title": "Spin (new time)",
                    "start": at(first, 19),
                    "end": at(first, 20),
                }
            },
        )
        future = response.json()["event"]
        assert future["id"] != master["id"] and future["recurrenceType"] == "MASTER"
        assert future["start"]["localDate"] == f"{first + timedelta(weeks=2)}T19:00:00"
        ended = wix.client.get(f"/calendar/v3/events/{master['id']}").json()["event"]
        assert ended["recurrenceRule"]["until"]["localDate"].startswith(
            str(first + timedelta(weeks=2, days=-1))
        )
        found = wix.query(**window(first, 35))["events"]
        assert [(e["start"]["localDate"][11:16], e["title"]) for e in found] == [
            ("18:00", "Spin class"),
            ("18:00", "Spin class"),
            ("19:00", "Spin (new time)"),
            ("19:00", "Spin (new time)"),
            ("19:00", "Spin (new time)"),
        ]
        assert wix.state.webhooks.flush()
        slugs = [
            (d.data["slug"], d.data["entityId"])
            for d in wix.state.webhooks.deliveries
            if d.data.get("entityFqdn")
        ]
        assert slugs[-2:] == [("updated", master["id"]), ("created", future["id"])]
    finally:
        stop_sandbox(wix)


# ---------------------------------------------------------------- webhooks


def test_signed_webhooks_for_create_update_cancel(wix: Wix) -> None:
    day = upcoming()
    event = wix.create(title="Yoga", start=at(day, 9), end=at(day, 10))
    wix.client.patch(
        f"/calendar/v3/events/{event['id']}", json={"event": {"revision": "1", "title": "Hot yoga"}}
    )
    wix.client.post(f"/calendar/v3/events/{event['id']}/cancel", json={})
    got = wix.hooks.wait_for(4)
    assert all(r.verified for r in got)
    assert {r.header["kid"] for r in got} == {wix.state.app(wix.app_id).key.kid}
    assert [r.data["slug"] for r in got] == ["created", "updated", "updated", "cancelled"]
    assert [r.envelope["eventType"] for r in got if r.envelope] == [
        "wix.calendar.v3.event_created",
        "wix.calendar.v3.event_updated",
        "wix.calendar.v3.event_updated",
        "wix.calendar.v3.event_cancelled",
    ]
    created, updated, _, cancelled = got
    assert created.envelope and created.envelope["instanceId"] == wix.instance_id
    assert created.envelope["identity"] == {"identityType": "APP", "appId": wix.app_id}
    assert created.data["entityFqdn"] == "wix.calendar.v3.event"
    assert created.data["entityId"] == event["id"]
    assert created.data["createdEvent"]["entity"]["title"] == "Yoga"
    assert updated.data["updatedEvent"]["currentEntity"]["title"] == "Hot yoga"
    assert updated.data["updatedEvent"]["currentEntity"]["revision"] == "2"
    assert cancelled.data["actionEvent"]["body"]["event"]["status"] == "CANCELLED"
    assert [r.data["entityEventSequence"] for r in got] == ["1", "2", "3", "4"]
    assert len({r.data["id"] for r in got}) == 4


def test_webhooks_do_not_delay_api_calls(wix: Wix) -> None:
    wix.hooks.delay = 0.5
    day = upcoming()
    started = time.monotonic()
    wix.create(start=at(day, 9), end=at(day, 10))
    assert time.monotonic() - started < 0.4
    assert wix.hooks.wait_for(1)[0].verified


def test_no_webhooks_for_instance_events(wix: Wix) -> None:
    first = upcoming(weekday=1)
    master = weekly(wix, first)
    instances = wix.query(**window(first, 21))["events"]
    assert len(instances) == 3
    wix.client.patch(
        f"/calendar/v3/events/{instances[0]['id']}",
        json={"event": {"revision": instances[0]["revision"], "title": "Special"}},
    )
    got = wix.delivered()
    kinds = [(r.data["slug"], r.data["entityId"]) for r in got]
    assert kinds == [("created", master["id"]), ("updated", instances[0]["id"])]
    assert got[1].data["updatedEvent"]["currentEntity"]["recurrenceType"] == "EXCEPTION"


def test_app_installed_and_removed(wix: Wix) -> None:
    site = wix.state.install(wix.app_id, instance_id="second-site")
    installed = wix.hooks.wait_for(1)[0]
    assert installed.verified and installed.envelope is not None
    assert installed.envelope["eventType"] == "AppInstalled"
    assert installed.envelope["instanceId"] == site.instance_id
    assert installed.data["appId"] == wix.app_id
    wix.state.remove(wix.instance_id)
    removed = wix.hooks.wait_for(2)[1]
    assert removed.envelope and removed.envelope["eventType"] == "AppRemoved"
    assert removed.envelope["instanceId"] == wix.instance_id
    assert wix.client.post("/calendar/v3/events/query", json={}).status_code == 401


def test_replayed_delivery_is_identical_and_detectable(wix: Wix) -> None:
    day = upcoming()
    wix.create(start=at(day, 9), end=at(day, 10))
    original = wix.hooks.wait_for(1)[0]
    delivery = wix.state.webhooks.latest()
    replay = wix.state.webhooks.replay(delivery.id)
    assert replay.state == "delivered" and replay.kind == "replay"
    again = wix.hooks.wait_for(2)[1]
    assert again.body == original.body and again.verified
    assert again.repeated  # only the inner webhook id tells a replay from a new event


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("other_key", "InvalidSignatureError"),
        ("alg_none", "InvalidAlgorithmError"),
        ("hs256", "InvalidAlgorithmError"),
        ("expired", "ExpiredSignatureError"),
        ("tampered", "InvalidSignatureError"),
    ],
)
def test_forged_deliveries_fail_verification(wix: Wix, kind: str, error: str) -> None:
    assert kind in FORGERIES
    day = upcoming()
    wix.create(start=at(day, 9), end=at(day, 10))
    wix.hooks.wait_for(1)
    forged = wix.state.webhooks.forge(kind)  # `kind in FORGERIES` narrowed it to a Forgery
    assert forged.kind == kind and forged.state == "delivered"
    received = wix.hooks.wait_for(2)[1]
    assert not received.verified and received.error == error


def test_failed_deliveries_are_retried_then_given_up(wix: Wix) -> None:
    wix.hooks.fail_next = 2
    day = upcoming()
    event = wix.create(start=at(day, 9), end=at(day, 10))
    received = wix.hooks.wait_for(1)[0]
    assert received.data["entityId"] == event["id"]
    assert wix.state.webhooks.flush()
    delivery = wix.state.webhooks.latest()
    assert [a.status for a in delivery.attempts] == [500, 500, 200]
    assert delivery.state == "delivered"

    wix.state.set_webhook_url(wix.app_id, "http://127.0.0.1:9/unreachable")
    wix.state.webhooks.options.time_scale = 0.000001  # the 47 h schedule in about 0.2 s
    wix.create(start=at(day, 11), end=at(day, 12))
    assert wix.state.webhooks.flush(timeout=10)
    doomed = wix.state.webhooks.latest()
    assert len(doomed.attempts) == 13 and doomed.state == "failed"  # 1 + 12 documented retries


def test_slow_receiver_counts_as_a_failure(receiver: tuple[Receiver, str]) -> None:
    wix = start_sandbox(*receiver, delivery=DeliveryOptions(time_scale=0.0001, timeout=0.2))
    try:
        wix.hooks.delay = 0.4
        day = upcoming()
        wix.create(start=at(day, 9), end=at(day, 10))
        wix.hooks.wait_for(1)
        wix.hooks.delay = 0.0
        assert wix.state.webhooks.flush()
        attempts = wix.state.webhooks.latest().attempts
        assert attempts[0].error and "Timeout" in attempts[0].error
        assert attempts[-1].status == 200
    finally:
        stop_sandbox(wix)


def test_dropped_duplicated_and_reordered_webhooks(wix: Wix) -> None:
    day = upcoming()
    hooks = wix.state.webhooks
    hooks.drop_next()
    lost = wix.create(start=at(day, 8), end=at(day, 9))
    hooks.duplicate_next()
    twice = wix.create(start=at(day, 9), end=at(day, 10))
    got = wix.hooks.wait_for(2)
    assert [r.data["entityId"] for r in got] == [twice["id"], twice["id"]]
    assert got[1].repeated and lost["id"] not in {r.data["entityId"] for r in wix.delivered()}

    hooks.pause()
    ids = [wix.create(start=at(day, 10 + i), end=at(day, 11 + i))["id"] for i in range(3)]
    hooks.resume(reverse=True)
    later = wix.hooks.wait_for(5)[2:]
    assert [r.data["entityId"] for r in later] == ids[::-1]


# ---------------------------------------------------------------- calsync's data on Wix


def test_busy_blocks_are_marked_as_calsyncs(wix: Wix) -> None:
    day = upcoming()
    marks = {"managedBy": "calsync", "provider": "google", "externalEventId": "g-123"}
    block = wix.create(
        title="Busy",
        start=at(day, 9),
        end=at(day, 10),
        transparency="BUSY",
        extendedFields={"namespaces": {SYNC_NAMESPACE: marks}},
    )
    wix.state.create_event(
        wix.instance_id,
        {
            "scheduleId": wix.schedule_id,
            "title": "Session",
            "start": at(day, 11),
            "end": at(day, 12),
        },
    )
    assert block["appId"] == wix.app_id
    found = wix.query(
        **window(day, 1),
        query={
            "filter": {
                f"extendedFields.namespaces.{SYNC_NAMESPACE}.provider": {
                    "$in": ["google", "microsoft"]
                }
            }
        },
    )
    assert [e["id"] for e in found["events"]] == [block["id"]]
    session = next(e for e in wix.query(**window(day, 1))["events"] if e["id"] != block["id"])
    assert session["appId"] == BOOKINGS_APP_ID and session["extendedFields"] == {}
    owner = wix.hooks.wait_for(2)[1]
    assert owner.envelope and owner.envelope["identity"]["identityType"] == "WIX_USER"


def test_external_calendar_overrides_schedule_then_session(wix: Wix) -> None:
    base = wix.served.base_url
    wix.state.set_schedule_overrides(
        wix.instance_id, wix.schedule_id, {"title": "Booked", "description": "Wix session"}
    )
    day = upcoming()
    plain = wix.create(start=at(day, 9), end=at(day, 10))
    own = wix.create(
        start=at(day, 11),
        end=at(day, 12),
        extendedFields={
            "namespaces": {"@calsync/externalCalendarOverrides": {"title": "Private client"}}
        },
    )
    url = f"{base}/_sandbox/instances/{wix.instance_id}/events"
    assert httpx.get(f"{url}/{plain['id']}/overrides", trust_env=False).json() == {
        "externalCalendarOverrides": {"title": "Booked", "description": "Wix session"}
    }
    assert wix.state.effective_overrides(wix.instance_id, own["id"]) == {
        "title": "Private client",
        "description": "Wix session",
    }


# ---------------------------------------------------------------- faults and admin routes


def test_injected_server_errors(wix: Wix) -> None:
    wix.state.faults.fail(status=503, times=2, path_prefix="/calendar/v3/events")
    statuses = [wix.client.post("/calendar/v3/events/query", json={}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert wix.token().status_code == 200  # outside the prefix


def test_injected_slowness(wix: Wix) -> None:
    wix.state.faults.slow(ms=300, times=1)
    started = time.monotonic()
    assert wix.client.post("/calendar/v3/events/query", json={}).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    wix.client.post("/calendar/v3/events/query", json={})
    assert time.monotonic() - started < 0.3


def test_rate_limits_answer_429_with_retry_after(wix: Wix) -> None:
    wix.state.faults.throttle(times=1, retry_after=7)
    throttled = wix.client.post("/calendar/v3/events/query", json={})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert error_code(throttled) == "TOO_MANY_REQUESTS"
    assert wix.client.post("/calendar/v3/events/query", json={}).status_code == 200

    wix.state.faults.rate_limit(requests=2, per_seconds=60)
    statuses = [wix.client.post("/calendar/v3/events/query", json={}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    wix.state.faults.clear()
    assert wix.client.post("/calendar/v3/events/query", json={}).status_code == 200


def test_admin_routes_drive_everything_over_http(receiver: tuple[Receiver, str]) -> None:
    hooks, hook_url = receiver
    state = WixState(delivery=DeliveryOptions(time_scale=0.0001))
    served = serve_in_thread(create_app(state))
    admin = httpx.Client(base_url=f"{served.base_url}/_sandbox", trust_env=False)
    try:
        app = admin.post("/apps", json={"webhookUrl": hook_url}).json()
        pem = admin.get(f"/apps/{app['appId']}/public-key").text
        assert pem == app["publicKeyPem"] and pem.startswith("-----BEGIN PUBLIC KEY-----")
        hooks.reset(pem)
        site = admin.post(f"/apps/{app['appId']}/instances", json={"timeZone": "Europe/Paris"})
        instance = site.json()["instanceId"]
        schedule = admin.post(
            f"/instances/{instance}/schedules", json={"name": "Carol", "externalId": "staff-carol"}
        ).json()["schedule"]
        day = upcoming()
        event = admin.post(
            f"/instances/{instance}/events",
            json={"event": {"scheduleId": schedule["id"], "start": at(day, 9), "end": at(day, 10)}},
        ).json()["event"]
        admin.patch(
            f"/instances/{instance}/events/{event['id']}",
            json={"event": {"title": "Moved by the owner"}},
        )
        got = hooks.wait_for(3)
        assert got[0].envelope and got[0].envelope["eventType"] == "AppInstalled"
        assert got[2].data["updatedEvent"]["currentEntity"]["title"] == "Moved by the owner"

        forged = admin.post("/webhooks/forge", json={"kind": "alg_none"}).json()
        assert forged["kind"] == "alg_none" and not hooks.wait_for(4)[3].verified
        deliveries = admin.get("/webhooks/deliveries").json()["deliveries"]
        admin.post(f"/webhooks/deliveries/{deliveries[1]['id']}/replay")
        assert hooks.wait_for(5)[4].repeated

        admin.post("/faults", json={"kind": "throttle", "retryAfter": 3})
        token = httpx.post(
            f"{served.base_url}/oauth2/token",
            trust_env=False,
            json={
                "grant_type": "client_credentials",
                "client_id": app["appId"],
                "client_secret": app["appSecret"],
                "instance_id": instance,
            },
        )
        assert token.status_code == 429 and token.headers["Retry-After"] == "3"
        admin.delete("/faults")
        assert admin.post("/clock/advance", json={"seconds": 5}).status_code == 409
    finally:
        admin.close()
        served.stop()
        state.close()


def test_a_state_method_can_act_as_the_app(wix: Wix) -> None:
    day = upcoming()
    event = wix.state.create_event(
        wix.instance_id,
        {"scheduleId": wix.schedule_id, "start": at(day, 9), "end": at(day, 10)},
        actor=Actor.app(wix.app_id),
    )
    assert event["appId"] == wix.app_id
    assert wix.hooks.wait_for(1)[0].envelope["identity"]["appId"] == wix.app_id  # type: ignore[index]
