"""The Google sandbox's batch endpoint, spoken raw: a `multipart/mixed` body of HTTP requests
posted with httpx, the `multipart/mixed` answer read with the standard library's MIME parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from harness.google import BASE, USER, GoogleWorld, timed

BATCH = "/batch/calendar/v3"
EVENTS = f"/calendar/v3/calendars/{USER}/events"
BOUNDARY = "calsync_test_boundary"


@dataclass(frozen=True)
class Inner:
    """One call of a batch: its Content-ID and its HTTP request."""

    content_id: str | None
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def part(self) -> str:
        head = ["Content-Type: application/http"]
        if self.content_id is not None:
            head.append(f"Content-ID: {self.content_id}")
        request = [f"{self.method} {self.path} HTTP/1.1"]
        request += [f"{name}: {value}" for name, value in self.headers]
        payload = "" if self.body is None else json.dumps(self.body, ensure_ascii=False)
        if self.body is not None:
            request.append("Content-Type: application/json")
        return "\r\n".join([*head, "", *request, "", payload])


@dataclass(frozen=True)
class Answered:
    """One inner response of the batch's answer."""

    content_id: str | None
    status: int
    headers: EmailMessage
    body: Any


@pytest.fixture(scope="module")
def world() -> Iterator[GoogleWorld]:
    started = GoogleWorld.start()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def fresh(world: GoogleWorld) -> None:
    world.reset()


@pytest.fixture
def client(world: GoogleWorld) -> Iterator[httpx.Client]:
    token = world.tokens().access_token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=world.server.base_url, headers=headers) as http:
        yield http


def post_batch(http: httpx.Client, calls: list[Inner], **headers: str) -> httpx.Response:
    body = "".join(f"--{BOUNDARY}\r\n{call.part()}\r\n" for call in calls) + f"--{BOUNDARY}--\r\n"
    content_type = f"multipart/mixed; boundary={BOUNDARY}"
    return http.post(BATCH, content=body, headers={"Content-Type": content_type, **headers})


def answers(response: httpx.Response) -> list[Answered]:
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/mixed; boundary=")
    envelope = parse(f"Content-Type: {content_type}\r\n\r\n".encode() + response.content)
    return [_answered(part) for part in envelope.iter_parts()]


def _answered(part: MIMEPart) -> Answered:
    assert part.get_content_type() == "application/http"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    status_line, rest = payload.split(b"\r\n", 1)
    inner = parse(rest)
    body = inner.get_payload(decode=True)
    assert isinstance(body, bytes)
    status = int(status_line.split()[1])
    return Answered(part["Content-ID"], status, inner, json.loads(body) if body else None)


def parse(message: bytes) -> EmailMessage:
    return BytesParser(EmailMessage, policy=policy.HTTP).parsebytes(message)


def insert(title: str) -> Inner:
    return Inner(None, "POST", EVENTS, {"summary": title, **timed(BASE)})


def seeded(world: GoogleWorld, title: str) -> dict[str, Any]:
    return world.state.insert_event(USER, {"summary": title, **timed(BASE)})


def test_creates_in_one_batch_are_each_answered_with_their_event(
    world: GoogleWorld, client: httpx.Client
) -> None:
    calls = [Inner(f"<item{i}>", "POST", EVENTS, {"summary": f"Café {i}", **timed(BASE)})
             for i in range(3)]  # fmt: skip
    answered = answers(post_batch(client, calls))
    assert [a.status for a in answered] == [200, 200, 200]
    assert [a.body["summary"] for a in answered] == ["Café 0", "Café 1", "Café 2"]
    assert all(a.headers["ETag"] == a.body["etag"] for a in answered)
    stored = {e["id"]: e["summary"] for e in world.state.stored_events(USER)}
    assert stored == {a.body["id"]: a.body["summary"] for a in answered}


def test_one_failing_call_fails_alone(world: GoogleWorld, client: httpx.Client) -> None:
    stale, fresh, doomed = (seeded(world, title) for title in ("stale", "fresh", "doomed"))
    world.state.patch_event(USER, stale["id"], {"colorId": "5"})  # its etag moves on
    calls = [
        Inner("<a>", "PATCH", f"{EVENTS}/{stale['id']}", {"summary": "lost"},
              (("If-Match", stale["etag"]),)),
        Inner("<b>", "PATCH", f"{EVENTS}/{fresh['id']}", {"summary": "kept"},
              (("If-Match", fresh["etag"]),)),
        Inner("<c>", "DELETE", f"{EVENTS}/{doomed['id']}", None, (("If-Match", doomed["etag"]),)),
        insert("new"),
    ]  # fmt: skip
    refused, patched, deleted, created = answers(post_batch(client, calls))
    assert refused.status == 412
    assert refused.body["error"]["errors"][0]["reason"] == "conditionNotMet"
    assert patched.status == 200 and patched.body["summary"] == "kept"
    assert deleted.status == 204 and deleted.body is None
    assert created.status == 200
    state = world.state
    assert state.get_event(USER, stale["id"])["summary"] == "stale"
    assert state.get_event(USER, fresh["id"])["summary"] == "kept"
    assert state.get_event(USER, doomed["id"])["status"] == "cancelled"
    assert state.get_event(USER, created.body["id"])["summary"] == "new"


def test_answers_are_named_after_their_calls_in_order(
    world: GoogleWorld, client: httpx.Client
) -> None:
    event = seeded(world, "known")
    calls = [
        Inner("<z:9@calsync.example>", "GET", f"{EVENTS}/{event['id']}"),
        Inner("plain-1", "GET", f"{EVENTS}/missing00"),
        Inner(None, "GET", f"{EVENTS}/{event['id']}"),
    ]
    first, second, third = answers(post_batch(client, calls))
    assert first.content_id == "<response-z:9@calsync.example>" and first.status == 200
    assert second.content_id == "response-plain-1" and second.status == 404
    assert third.content_id is None and third.status == 200
    assert first.body["id"] == third.body["id"] == event["id"]


def test_a_batch_holds_at_most_a_thousand_calls(world: GoogleWorld, client: httpx.Client) -> None:
    listing = Inner(None, "GET", "/calendar/v3/users/me/calendarList")
    assert len(answers(post_batch(client, [listing] * 1000))) == 1000
    too_many = post_batch(client, [insert("one too many")] * 1001)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == 400
    assert world.state.stored_events(USER) == []


def test_an_unauthorised_batch_is_refused_whole(world: GoogleWorld, client: httpx.Client) -> None:
    for authorization in (None, "Bearer not-a-token"):
        headers = {} if authorization is None else {"Authorization": authorization}
        with httpx.Client(base_url=world.server.base_url, headers=headers) as anonymous:
            refused = post_batch(anonymous, [insert("sneaky")])
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == 401
    assert world.state.stored_events(USER) == []


def test_a_call_with_its_own_authorization_uses_it(
    world: GoogleWorld, client: httpx.Client
) -> None:
    bad = Inner("<bad>", "POST", EVENTS, {"summary": "x", **timed(BASE)},
                (("Authorization", "Bearer not-a-token"),))  # fmt: skip
    good, refused = answers(post_batch(client, [insert("mine"), bad]))
    assert good.status == 200 and refused.status == 401
    assert [e["summary"] for e in world.state.stored_events(USER)] == ["mine"]


def test_only_calendar_api_paths_are_served(world: GoogleWorld, client: httpx.Client) -> None:
    event = seeded(world, "stays")
    calls = [
        Inner(None, "POST", "/_sandbox/reset"),
        Inner(None, "GET", f"http://127.0.0.1:9{EVENTS}/{event['id']}"),
        Inner(None, "GET", f"{EVENTS}/{event['id']}"),
    ]
    reset, absolute, fine = answers(post_batch(client, calls))
    assert reset.status == absolute.status == 400 and fine.status == 200
    assert world.state.get_event(USER, event["id"])["summary"] == "stays"


def test_each_call_counts_against_the_quota_and_the_batch_does_not(
    world: GoogleWorld, client: httpx.Client
) -> None:
    world.state.faults.set_quota(3)
    answered = answers(post_batch(client, [insert(f"e{i}") for i in range(5)]))
    assert [a.status for a in answered] == [200, 200, 200, 403, 403]
    assert answered[3].body["error"]["errors"][0]["reason"] == "userRateLimitExceeded"


def test_a_rate_limited_batch_is_refused_whole(world: GoogleWorld, client: httpx.Client) -> None:
    world.state.faults.rate_limit(1, status=429, retry_after=5, match=BATCH)
    refused = post_batch(client, [insert("later")])
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert world.state.stored_events(USER) == []
    assert [a.status for a in answers(post_batch(client, [insert("now")]))] == [200]


def test_a_body_that_is_not_multipart_is_refused(client: httpx.Client) -> None:
    refused = client.post(BATCH, json={"requests": []})
    assert refused.status_code == 400
