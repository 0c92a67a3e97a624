"""The Graph sandbox's JSON batching (`POST /v1.0/$batch`), as raw JSON over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.graph.harness import GraphHarness, graph_harness

JSON = {"Content-Type": "application/json"}


@dataclass
class Batching:
    graph: GraphHarness
    http: httpx.Client

    @property
    def user(self) -> str:
        return self.graph.user.id

    def seed(self, subject: str, day: int = 4) -> tuple[str, str]:
        """An event the owner made in Outlook: (id, etag)."""
        state = self.graph.state
        instance, _ = state.create_event(self.user, event(subject, day), check_access=False)
        return instance.id, instance.etag

    def owner_renames(self, event_id: str, subject: str) -> None:
        rename = {"subject": subject}
        self.graph.state.update_event(self.user, event_id, rename, check_access=False)

    def subjects(self) -> list[str]:
        held = self.graph.state.list_events(self.user, None)
        return sorted(str(e.content["subject"]) for e in held)

    def batch(self, *requests: dict[str, Any]) -> httpx.Response:
        return self.http.post("/$batch", json={"requests": list(requests)})

    def answers(self, *requests: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The batch's responses by id (Graph answers in any order)."""
        answer = self.batch(*requests)
        assert answer.status_code == 200, answer.text
        responses = answer.json()["responses"]
        assert sorted(r["id"] for r in responses) == sorted(r["id"] for r in requests)
        return {r["id"]: r for r in responses}


def event(subject: str, day: int = 4, hour: int = 9) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2030-03-{day:02d}T{hour:02d}:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2030-03-{day:02d}T{hour + 1:02d}:00:00", "timeZone": "UTC"},
    }


def create(item_id: str, subject: str) -> dict[str, Any]:
    return {
        "id": item_id, "method": "POST", "url": "/me/events", "body": event(subject),
        "headers": JSON,
    }  # fmt: skip


def rename(item_id: str, event_id: str, subject: str, etag: str) -> dict[str, Any]:
    return {
        "id": item_id, "method": "PATCH", "url": f"/me/events/{event_id}",
        "body": {"subject": subject}, "headers": {**JSON, "If-Match": etag},
    }  # fmt: skip


@pytest.fixture
def sb() -> Iterator[Batching]:
    with graph_harness() as graph:
        token = graph.issue_tokens()["access_token"]
        base = f"{graph.api.base_url}/v1.0"
        signed = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=signed, trust_env=False, timeout=10) as http:
            yield Batching(graph, http)


def test_each_item_is_answered_on_its_own_and_a_failing_one_spoils_none(sb: Batching) -> None:
    kept, _ = sb.seed("Kept")
    moved, moved_etag = sb.seed("Moved", 5)
    stale, stale_etag = sb.seed("Stale", 6)
    gone, _ = sb.seed("Gone", 7)
    sb.owner_renames(stale, "Edited in Outlook")
    answers = sb.answers(
        create("new", "Created"),
        rename("patch", moved, "Renamed", moved_etag),
        rename("stale", stale, "Lost update", stale_etag),
        {"id": "delete", "method": "DELETE", "url": f"/users/{sb.user}/events/{gone}"},
        {"id": "read", "method": "GET", "url": "/me/events?$filter=subject eq 'Kept'&$select=id"},
    )
    statuses = {i: a["status"] for i, a in answers.items()}
    assert statuses == {"new": 201, "patch": 200, "stale": 412, "delete": 204, "read": 200}
    assert answers["stale"]["body"]["error"]["code"] == "ErrorIrresolvableConflict"
    assert answers["patch"]["body"]["subject"] == "Renamed"
    assert answers["patch"]["headers"]["etag"] == answers["patch"]["body"]["@odata.etag"]
    assert [e["id"] for e in answers["read"]["body"]["value"]] == [kept]
    assert "body" not in answers["delete"]
    assert sb.subjects() == ["Created", "Edited in Outlook", "Kept", "Renamed"]


def test_items_run_with_the_batch_token_and_its_mailbox_rights(sb: Batching) -> None:
    bob = sb.graph.state.add_user("bob@contoso.test")
    answers = sb.answers(
        {**create("mine", "Mine"), "headers": {**JSON, "Authorization": "Bearer forged"}},
        {"id": "theirs", "method": "GET", "url": f"/users/{bob.id}/events"},
    )
    assert answers["mine"]["status"] == 201  # the item's own Authorization is not used
    assert answers["theirs"]["status"] == 403
    assert sb.subjects() == ["Mine"]


def test_more_than_twenty_requests_are_refused_whole(sb: Batching) -> None:
    answer = sb.batch(*(create(str(n), f"Booking {n}") for n in range(21)))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "BadRequest" and "exceeds the limit" in error["message"]
    assert sb.subjects() == []
    assert len(sb.answers(*(create(str(n), f"Booking {n}") for n in range(20)))) == 20


def test_duplicate_ids_are_refused_whole_ignoring_case(sb: Batching) -> None:
    answer = sb.batch(create("a", "First"), create("A", "Second"))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Request Id A has to be unique in a batch."
    assert sb.subjects() == []


def test_a_write_without_content_type_is_refused_whole(sb: Batching) -> None:
    untyped = {"id": "2", "method": "POST", "url": "/me/events", "body": event("Untyped")}
    answer = sb.batch(create("1", "Typed"), untyped)
    assert answer.status_code == 400
    assert "Write request id : 2" in answer.json()["error"]["message"]
    assert sb.subjects() == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
def test_an_unauthorised_batch_is_refused_and_runs_nothing(
    sb: Batching, headers: dict[str, str]
) -> None:
    body = {"requests": [create("1", "Booking")]}
    with httpx.Client(base_url=sb.http.base_url, headers=headers, trust_env=False) as stranger:
        answer = stranger.post("/$batch", json=body)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert sb.subjects() == []


def test_depends_on_runs_in_order_and_a_failed_dependency_stops_its_dependents(
    sb: Batching,
) -> None:
    first, etag = sb.seed("First")
    again = {**rename("again", first, "Again", etag), "dependsOn": ["RENAME"]}
    after = {**create("after", "After"), "dependsOn": ["again"]}
    answers = sb.answers(rename("rename", first, "Renamed", etag), again, after)
    # The second PATCH ran after the first, so its etag was stale; what depends on it never ran.
    assert [answers[i]["status"] for i in ("rename", "again", "after")] == [200, 412, 424]
    assert answers["after"]["body"]["error"]["code"] == "FailedDependency"
    assert sb.subjects() == ["Renamed"]


def test_depending_on_a_request_not_listed_before_is_refused(sb: Batching) -> None:
    answer = sb.batch({**create("1", "Early"), "dependsOn": ["2"]}, create("2", "Late"))
    assert answer.status_code == 400
    assert sb.subjects() == []


def test_items_meet_faults_of_their_own_path_with_retry_after(sb: Batching) -> None:
    creates = "/v1.0/me/events"  # inside the batch, not the batch itself
    sb.graph.state.faults.throttle(1, retry_after=7, path_prefix=creates, methods=["POST"])
    answers = sb.answers(create("1", "Throttled"), create("2", "Served"))
    throttled = next(a for a in answers.values() if a["status"] == 429)
    assert throttled["headers"]["retry-after"] == "7"
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    assert len(sb.subjects()) == 1


def test_a_throttled_batch_runs_nothing(sb: Batching) -> None:
    sb.graph.state.faults.throttle(1, retry_after=3, path_prefix="/v1.0/$batch")
    answer = sb.batch(create("1", "Booking"))
    assert answer.status_code == 429 and answer.headers["retry-after"] == "3"
    assert sb.subjects() == []
