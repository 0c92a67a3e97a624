"""The sandboxes' "damaged event" fault: an event served without some of its fields, in every
listing and get, reported as changed, until it is repaired. Driven by the real
google-api-python-client (Google) and plain HTTP (Graph), the fault through the admin routes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from harness.google import USER, GoogleWorld, timed

from sandbox.graph.harness import GraphHarness, graph_harness

START = (datetime.now(UTC) + timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)


DAY = timedelta(days=1)


def stamp(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


# -- Google ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google() -> Iterator[GoogleWorld]:
    world = GoogleWorld.start()
    yield world
    world.stop()


@pytest.fixture
def google_api(google: GoogleWorld) -> Any:
    """The events resource of the real googleapiclient, as calsync builds it."""
    google.reset()
    return google.calendar().api.service.events()


def google_damage(google: GoogleWorld, event_id: str, drop: Any) -> httpx.Response:
    url = f"{google.server.base_url}/_sandbox/calendars/{USER}/events/{event_id}/damage"
    with httpx.Client(trust_env=False) as http:
        return http.post(url, json={"drop": drop})


def google_list(events: Any, **params: Any) -> tuple[dict[str, dict[str, Any]], str]:
    page = events.list(calendarId="primary", showDeleted=True, **params).execute()
    return {item["id"]: item for item in page["items"]}, page.get("nextSyncToken", "")


def test_a_damaged_google_event_is_served_without_its_fields_until_repaired(
    google: GoogleWorld, google_api: Any
) -> None:
    insert = google_api.insert
    single = insert(calendarId="primary", body={"summary": "dentist", **timed(START)}).execute()
    other = insert(calendarId="primary", body={"summary": "gym", **timed(START + DAY)}).execute()
    _, token = google_list(google_api)
    google.state.clock.advance(1)  # so that `updated` differs

    damaged = google_damage(google, single["id"], ["start", "end"])
    assert damaged.status_code == 200
    assert "start" not in damaged.json() and damaged.json()["summary"] == "dentist"

    changed, token = google_list(google_api, syncToken=token)
    assert list(changed) == [single["id"]]  # reported as changed, the other event is not
    item = changed[single["id"]]
    assert "start" not in item and "end" not in item and item["status"] == "confirmed"
    assert item["etag"] != single["etag"] and item["updated"] > single["updated"]
    full, _ = google_list(google_api, timeMin=START.isoformat())
    assert "start" not in full[single["id"]] and full[other["id"]]["start"] == other["start"]
    got = google_api.get(calendarId="primary", eventId=single["id"]).execute()
    assert "end" not in got and got["etag"] == item["etag"]

    repaired = google_damage(google, single["id"], [])
    assert repaired.status_code == 200
    changed, _ = google_list(google_api, syncToken=token)
    assert changed[single["id"]]["start"] == single["start"]
    assert changed[single["id"]]["etag"] not in (item["etag"], single["etag"])


def test_a_damaged_google_occurrence_becomes_an_exception_served_without_its_fields(
    google: GoogleWorld, google_api: Any
) -> None:
    series = google_api.insert(
        calendarId="primary",
        body={"summary": "standup", **timed(START), "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]},
    ).execute()
    _, token = google_list(google_api, singleEvents=True)
    second = f"{series['id']}_{stamp(START + DAY)}"

    assert google_damage(google, second, ["start", "end"]).status_code == 200
    changed, _ = google_list(google_api, singleEvents=True, syncToken=token)
    assert list(changed) == [second]
    assert "start" not in changed[second] and changed[second]["recurringEventId"] == series["id"]
    full, _ = google_list(google_api, singleEvents=True, timeMin=START.isoformat())
    assert len(full) == 3 and "start" not in full[second]
    assert full[f"{series['id']}_{stamp(START)}"]["start"]["timeZone"] == "Europe/Berlin"
    assert [e["id"] for e in google.state.stored_events(USER)] == [series["id"], second]

    google_damage(google, second, [])
    got = google_api.get(calendarId="primary", eventId=second).execute()
    assert got["start"]["dateTime"].startswith((START + DAY).strftime("%Y-%m-%d"))


def test_google_damage_refuses_bad_input_and_changes_nothing(
    google: GoogleWorld, google_api: Any
) -> None:
    event = google_api.insert(calendarId="primary", body={"summary": "x", **timed(START)}).execute()
    for drop, named in ((["colour"], "colour"), (["id"], "id"), ("start", "drop")):
        answer = google_damage(google, event["id"], drop)
        assert answer.status_code == 400 and named in answer.json()["error"]
    assert google_damage(google, "nosuchevent", ["start"]).status_code == 404
    assert google_api.get(calendarId="primary", eventId=event["id"]).execute() == event


# -- Graph -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


@pytest.fixture
def graph_api(graph: GraphHarness) -> Iterator[httpx.Client]:
    token = graph.issue_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Prefer": 'outlook.timezone="UTC"'}
    with httpx.Client(
        base_url=f"{graph.api.base_url}/v1.0", headers=headers, trust_env=False, timeout=10
    ) as http:
        yield http


def graph_damage(graph: GraphHarness, event_id: str, drop: Any) -> httpx.Response:
    url = f"{graph.api.base_url}/_sandbox/users/{graph.user.id}/events/{event_id}/damage"
    with httpx.Client(trust_env=False) as http:
        return http.post(url, json={"drop": drop})


def graph_event(subject: str, start: datetime, **extra: Any) -> dict[str, Any]:
    def utc(moment: datetime) -> dict[str, str]:
        return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

    return {"subject": subject, "start": utc(start), "end": utc(start + timedelta(hours=1)),
            **extra}  # fmt: skip


def delta_round(http: httpx.Client, link: str) -> tuple[dict[str, dict[str, Any]], str]:
    items: dict[str, dict[str, Any]] = {}
    page = http.get(link).json()
    while True:
        items.update({item["id"]: item for item in page["value"]})
        if "@odata.deltaLink" in page:
            return items, str(page["@odata.deltaLink"])
        page = http.get(page["@odata.nextLink"]).json()


def window() -> str:
    lo, hi = START - DAY, START + timedelta(days=7)
    return f"startDateTime={lo:%Y-%m-%dT%H:%M:%SZ}&endDateTime={hi:%Y-%m-%dT%H:%M:%SZ}"


def test_a_damaged_graph_event_is_served_without_its_fields_until_repaired(
    graph: GraphHarness, graph_api: httpx.Client
) -> None:
    single = graph_api.post("/me/events", json=graph_event("dentist", START)).json()
    other = graph_api.post("/me/events", json=graph_event("gym", START + DAY))
    _, link = delta_round(graph_api, f"/me/calendarView/delta?{window()}")
    graph.state.clock.advance(1)  # so that lastModifiedDateTime differs

    damaged = graph_damage(graph, single["id"], ["start", "end", "type"])
    assert damaged.status_code == 200 and "type" not in damaged.json()
    changed, link = delta_round(graph_api, link)
    assert list(changed) == [single["id"]]
    item = changed[single["id"]]
    assert not {"start", "end", "type"} & set(item) and item["subject"] == "dentist"
    assert item["changeKey"] != single["changeKey"]
    assert item["lastModifiedDateTime"] > single["lastModifiedDateTime"]
    view = {e["id"]: e for e in graph_api.get(f"/me/calendarView?{window()}").json()["value"]}
    assert (
        "start" not in view[single["id"]] and view[other.json()["id"]]["type"] == "singleInstance"
    )
    assert "end" not in graph_api.get(f"/me/events/{single['id']}").json()

    assert graph_damage(graph, single["id"], []).status_code == 200
    changed, _ = delta_round(graph_api, link)
    assert changed[single["id"]]["start"] == single["start"]
    assert changed[single["id"]]["type"] == "singleInstance"


def test_a_damaged_graph_occurrence_becomes_an_exception_served_without_its_fields(
    graph: GraphHarness, graph_api: httpx.Client
) -> None:
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": f"{START:%Y-%m-%d}", "numberOfOccurrences": 3},
    }
    master = graph_api.post("/me/events", json=graph_event("standup", START, recurrence=recurrence))
    instances = graph_api.get(f"/me/events/{master.json()['id']}/instances?{window()}")
    first, second, third = (i["id"] for i in instances.json()["value"])
    _, link = delta_round(graph_api, f"/me/calendarView/delta?{window()}")

    assert graph_damage(graph, second, ["type"]).status_code == 200
    changed, link = delta_round(graph_api, link)  # the master's changeKey changes as well
    assert "type" not in changed[second] and changed[first]["type"] == "occurrence"
    listed = graph_api.get(f"/me/events/{master.json()['id']}/instances?{window()}").json()
    kinds = {i["id"]: i.get("type") for i in listed["value"]}
    assert kinds == {first: "occurrence", second: None, third: "occurrence"}

    graph_damage(graph, second, [])
    assert graph_api.get(f"/me/events/{second}").json()["type"] == "exception"
    changed, _ = delta_round(graph_api, link)
    assert changed[second]["type"] == "exception"


def test_graph_damage_refuses_bad_input_and_changes_nothing(
    graph: GraphHarness, graph_api: httpx.Client
) -> None:
    event = graph_api.post("/me/events", json=graph_event("x", START)).json()
    for drop, named in ((["colour"], "colour"), (["id"], "id"), ("start", "drop")):
        answer = graph_damage(graph, event["id"], drop)
        assert answer.status_code == 400 and named in answer.text
    assert graph_damage(graph, "AAMkunknown", ["start"]).status_code == 404
    assert graph_api.get(f"/me/events/{event['id']}").json()["changeKey"] == event["changeKey"]
