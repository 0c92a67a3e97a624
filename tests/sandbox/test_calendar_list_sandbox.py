"""The sandboxes' calendar lists over HTTP, as Google and Graph document them: Google's
calendarList pages (100 by default, 250 at most), hidden and deleted entries, what a sync token
refuses; Graph's /me/calendars pages (10 by default) with `@odata.nextLink`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from harness.google import CLIENT_ID, USER, GoogleWorld

from sandbox.graph.harness import GraphHarness, graph_harness


@pytest.fixture(scope="module")
def world() -> Iterator[GoogleWorld]:
    started = GoogleWorld.start()
    yield started
    started.stop()


class CalendarList:
    """The signed-in user's calendarList over HTTP."""

    def __init__(self, world: GoogleWorld) -> None:
        token = world.state.issue_tokens(USER, CLIENT_ID)["access_token"]
        self.url = f"{world.server.base_url}/calendar/v3/users/me/calendarList"
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"})

    def get(self, params: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.get(self.url, params=params)

    def entry(self, calendar_id: str) -> httpx.Response:
        return self.http.get(f"{self.url}/{calendar_id}")


@pytest.fixture
def google(world: GoogleWorld) -> Iterator[CalendarList]:
    world.reset()
    listing = CalendarList(world)
    yield listing
    listing.http.close()


def entries(client: CalendarList, **params: Any) -> list[dict[str, Any]]:
    found, token = [], None
    while True:
        page = client.get({**params, **({"pageToken": token} if token else {})})
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        token = page.json().get("nextPageToken")
        if token is None:
            assert "nextSyncToken" in page.json()
            return found


def test_calendar_list_pages_are_100_by_default_and_250_at_most(
    world: GoogleWorld, google: CalendarList
) -> None:  # fmt: skip
    for n in range(299):
        world.state.add_calendar(USER, summary=f"Room {n:03}")
    first = google.get().json()
    assert len(first["items"]) == 100 and "nextPageToken" in first
    assert len(google.get({"maxResults": 1000}).json()["items"]) == 250
    assert len(entries(google)) == 300


def test_hidden_and_deleted_entries_show_only_when_asked(
    world: GoogleWorld, google: CalendarList
) -> None:  # fmt: skip
    state = world.state
    hidden = state.add_calendar(USER, summary="Hidden")
    state.hide_calendar(USER, hidden)
    left = state.add_calendar(USER, summary="Left")
    state.unsubscribe_calendar(USER, left)
    deleted = state.add_calendar(USER, summary="Deleted")
    state.delete_calendar(deleted)

    assert [e["id"] for e in entries(google)] == [USER]
    shown = {e["id"]: e for e in entries(google, showHidden="true")}
    assert set(shown) == {USER, hidden} and shown[hidden]["hidden"] is True
    with_deleted = {e["id"]: e for e in entries(google, showDeleted="true")}
    assert set(with_deleted) == {USER, left, deleted}
    assert with_deleted[left] == {"kind": "calendar#calendarListEntry", "etag": with_deleted[
        left]["etag"], "id": left, "deleted": True}  # fmt: skip
    assert google.entry(deleted).status_code == 404
    with pytest.raises(ValueError, match="primary"):
        state.delete_calendar(USER)


def test_a_sync_token_lists_hidden_and_deleted_and_refuses_narrowing(
    world: GoogleWorld, google: CalendarList
) -> None:  # fmt: skip
    sync_token = google.get().json()["nextSyncToken"]
    hidden = world.state.add_calendar(USER, summary="Hidden")
    world.state.hide_calendar(USER, hidden)
    answer = google.get({"syncToken": sync_token})
    assert {e["id"] for e in answer.json()["items"]} == {USER, hidden}
    for refused in ({"showDeleted": "false"}, {"showHidden": "false"},
                    {"minAccessRole": "owner"}):  # fmt: skip
        answer = google.get({"syncToken": sync_token, **refused})
        assert answer.status_code == 400, refused


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


def test_graph_lists_calendars_ten_a_page_with_a_next_link(graph: GraphHarness) -> None:
    for n in range(11):
        graph.state.add_calendar(graph.user.id, f"Room {n:02}")
    token = graph.issue_tokens()["access_token"]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        page = client.get(f"{graph.graph_base_url}v1.0/me/calendars").json()
        assert len(page["value"]) == 10
        rest = client.get(page["@odata.nextLink"]).json()
        assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
        names = {c["name"] for c in page["value"] + rest["value"]}
        assert names == {"Calendar"} | {f"Room {n:02}" for n in range(11)}
        small = client.get(f"{graph.graph_base_url}v1.0/me/calendars", params={"$top": 5})
        assert len(small.json()["value"]) == 5
