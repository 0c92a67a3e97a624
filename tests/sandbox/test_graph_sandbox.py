"""The Microsoft Graph sandbox driven by the real O365 package, MSAL, and plain HTTP.

The sandbox (HTTP for the Graph API, HTTPS for the login authority MSAL insists on) and a
notification receiver are served on loopback ports; every assertion is on a real response or a
real notification POST.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import msal
import pytest
import requests
from O365 import Account
from O365.connection import MSGraphProtocol
from O365.utils.token import MemoryTokenBackend
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandbox.graph import (
    GraphSettings,
    GraphState,
    TlsFiles,
    create_app,
    make_tls,
    serve_tls_in_thread,
    trusting_session,
)
from sandbox.graph.state import User
from sandbox.server import ServedApp, serve_in_thread

CLIENT_ID = "calsync-test"
CLIENT_SECRET = "sandbox-secret"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
SCOPES = [
    "https://graph.microsoft.com/Calendars.ReadWrite",
    "https://graph.microsoft.com/User.Read",
]
BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-01T00:00:00Z"}
DO_NOT_FORWARD = "Boolean {00020329-0000-0000-C000-000000000046} Name DoNotForward"
TAG = "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name calsyncLink"


def when(day: int, hour: int, month: int = 3) -> dict[str, str]:
    return {"dateTime": f"2030-{month:02d}-{day:02d}T{hour:02d}:00:00", "timeZone": "UTC"}


def event_body(
    subject: str, day: int, hour: int = 9, month: int = 3, **extra: Any
) -> dict[str, Any]:
    start, end = when(day, hour, month), when(day, hour + 1, month)
    return {"subject": subject, "start": start, "end": end, **extra}


# -- servers and clients ---------------------------------------------------------------------


@dataclass
class Received:
    """One item of a posted `{"value": [...]}` (Graph may batch several in one POST)."""

    path: str
    item: dict[str, Any]


@dataclass
class Receiver:
    """A webhook endpoint. The path decides how it behaves:

    `/wrong` answers the validation with another text, `/encoded` with the URL-encoded token,
    `/flaky` fails the first `fail_first` notifications with 500, `/slow` sleeps `slow_seconds`;
    every other path echoes the validation token and answers notifications 202."""

    fail_first: int = 1
    slow_seconds: float = 0.6
    validations: list[tuple[str, str, str]] = field(default_factory=list)  # path, token, type
    received: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle(self, request: Request) -> Response:
        path = request.path_params["name"]
        token = request.query_params.get("validationToken")
        if token is not None:
            self.validations.append((path, token, request.headers.get("content-type", "")))
            answer = {"wrong": "not the token", "encoded": quote(token)}.get(path, token)
            return PlainTextResponse(answer)
        with self.cond:
            self.received += [Received(path, item) for item in (await request.json())["value"]]
            self.cond.notify_all()
        if path == "flaky" and self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=500)
        if path == "slow":
            await asyncio.sleep(self.slow_seconds)
        return Response(status_code=202)

    def wait(self, test: Callable[[Received], bool], timeout: float = 5.0) -> Received:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = next((r for r in self.received if test(r)), None)
                if found is not None:
                    return found
                if time.monotonic() > deadline:
                    raise AssertionError(f"no matching notification in {self.received!r}")
                self.cond.wait(0.05)


@dataclass
class Sandbox:
    state: GraphState
    user: User
    served: ServedApp
    token: str
    receiver: Receiver
    receiver_url: str

    @property
    def api(self) -> str:
        return f"{self.served.base_url}/v1.0"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.api, headers=headers, trust_env=False, timeout=10)

    def delta_start(self) -> str:
        """The first-round URL of `calendarView/delta` over WINDOW."""
        query = "&".join(f"{k}={v}" for k, v in WINDOW.items())
        return f"{self.api}/me/calendarView/delta?{query}"

    def hook(self, name: str) -> str:
        return f"{self.receiver_url}/{name}"

    def seed(self, body: dict[str, Any], calendar_id: str | None = None) -> str:
        """An event made by the mailbox owner in Outlook (not through the API)."""
        instance, _ = self.state.create_event(
            self.user.id, body, calendar_id=calendar_id, check_access=False
        )
        return instance.id


@pytest.fixture(scope="module")
def tls() -> TlsFiles:
    return make_tls()


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[dict[str, Receiver], ServedApp]]:
    """One served receiver app per module; each test swaps in a fresh `Receiver`."""
    holder = {"current": Receiver()}

    async def route(request: Request) -> Response:
        return await holder["current"].handle(request)

    served = serve_in_thread(Starlette(routes=[Route("/{name}", route, methods=["POST"])]))
    yield holder, served
    served.stop()


@pytest.fixture
def sb(receiver_server: tuple[dict[str, Receiver], ServedApp]) -> Iterator[Sandbox]:
    holder, served_receiver = receiver_server
    receiver = holder["current"] = Receiver()
    settings = GraphSettings(
        notification_retry_delays=(0.05, 0.1), notification_timeout=0.4, validation_timeout=2.0
    )
    state = GraphState(settings)
    user = state.add_user(
        "alice@contoso.test", "Alice Example", time_zone="W. Europe Standard Time"
    )
    state.identity.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT])
    token = state.identity.issue_tokens(user.id, client_id=CLIENT_ID)["access_token"]
    served = serve_in_thread(create_app(state))
    yield Sandbox(state, user, served, token, receiver, served_receiver.base_url)
    served.stop()
    state.close()


def o365_account(sb: Sandbox) -> Account:
    """O365 pointed at the sandbox, its token backend holding a sandbox-issued token."""
    issued = sb.state.identity.issue_tokens(sb.user.id, client_id=CLIENT_ID)
    backend = MemoryTokenBackend()
    backend.add({
        "client_id": CLIENT_ID, "scope": issued["scope"].split(), "response": dict(issued),
        "token_endpoint": f"https://127.0.0.1/{sb.state.tenant_id}/oauth2/v2.0/token",
        "environment": "127.0.0.1", "params": {}, "data": {},
    })  # fmt: skip
    protocol_class = type(
        "SandboxGraph", (MSGraphProtocol,), {"_protocol_url": f"{sb.served.base_url}/"}
    )
    return Account(
        (CLIENT_ID, CLIENT_SECRET),
        protocol=protocol_class(timezone=BERLIN),
        token_backend=backend,
        requests_delay=0,
        request_retries=3,
    )


def subscribe(
    sb: Sandbox, notify: str = "notify", lifecycle: str | None = "lifecycle", **extra: Any
) -> httpx.Response:
    expires = sb.state.now() + dt.timedelta(hours=1)
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": sb.hook(notify),
        "resource": "/me/events",
        "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
        "clientState": "s3cret-state",
        **extra,
    }
    if lifecycle:
        body["lifecycleNotificationUrl"] = sb.hook(lifecycle)
    with sb.client() as client:
        return client.post("/subscriptions", json=body)


def follow_delta(
    client: httpx.Client, url: str, page_size: int | None = None
) -> tuple[list[dict[str, Any]], list[str], str]:
    """All items of one delta round, the nextLinks followed, and the final deltaLink."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    items, next_links = [], []
    while True:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["value"]
        if "@odata.nextLink" in body:
            url = body["@odata.nextLink"]
            next_links.append(url)
            continue
        return items, next_links, body["@odata.deltaLink"]


# -- OAuth ----------------------------------------------------------------------------------------


# This round trip uses MSAL's older code-redemption calls, which MSAL marks deprecated.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:msal")
def test_msal_authorization_code_refresh_and_revoked_refresh(sb: Sandbox, tls: TlsFiles) -> None:
    login = serve_tls_in_thread(create_app(sb.state), tls)
    try:
        app = msal.ConfidentialClientApplication(
            CLIENT_ID, client_credential=CLIENT_SECRET,
            authority=f"{login.base_url}/{sb.state.tenant_id}", instance_discovery=False,
            http_client=trusting_session(tls),
        )  # fmt: skip
        url = app.get_authorization_request_url(SCOPES, redirect_uri=REDIRECT, state="st-1")
        redirect = trusting_session(tls).get(url, allow_redirects=False)
        assert redirect.status_code == 302
        reply = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
        assert reply["state"] == "st-1"

        tokens = app.acquire_token_by_authorization_code(
            reply["code"], SCOPES, redirect_uri=REDIRECT
        )
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
        claims = tokens["id_token_claims"]
        assert claims["preferred_username"] == "alice@contoso.test"
        assert (claims["oid"], claims["tid"]) == (sb.user.id, sb.state.tenant_id)
        assert "Calendars.ReadWrite" in tokens["scope"].split()
        with sb.client(tokens["access_token"]) as client:
            assert client.get("/me").json()["userPrincipalName"] == "alice@contoso.test"

        again = app.acquire_token_by_authorization_code(
            reply["code"], SCOPES, redirect_uri=REDIRECT
        )
        assert again["error"] == "invalid_grant"  # a code is redeemed once

        refreshed = app.acquire_token_by_refresh_token(tokens["refresh_token"], SCOPES)
        assert refreshed["access_token"] != tokens["access_token"]
        with sb.client(refreshed["access_token"]) as client:
            assert client.get("/me/calendar").status_code == 200

        assert sb.state.identity.revoke_refresh_tokens(sb.user.upn) >= 1
        refused = app.acquire_token_by_refresh_token(tokens["refresh_token"], SCOPES)
        assert refused["error"] == "invalid_grant"
        assert "AADSTS50173" in refused["error_description"]
    finally:
        login.stop()


@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")
def test_msal_pkce_flow_feeds_o365_token_backend(sb: Sandbox, tls: TlsFiles) -> None:
    login = serve_tls_in_thread(create_app(sb.state), tls)
    try:
        backend = MemoryTokenBackend()
        app = msal.ConfidentialClientApplication(
            CLIENT_ID, client_credential=CLIENT_SECRET, token_cache=backend,
            authority=f"{login.base_url}/{sb.state.tenant_id}", instance_discovery=False,
            http_client=trusting_session(tls),
        )  # fmt: skip
        flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, response_mode="query")
        redirect = trusting_session(tls).get(flow["auth_uri"], allow_redirects=False)
        reply = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
        result = app.acquire_token_by_auth_code_flow(flow, reply)
        assert result["id_token_claims"]["nonce"]  # MSAL sends a hash of flow["nonce"]

        proto = type(
            "SandboxGraph", (MSGraphProtocol,), {"_protocol_url": f"{sb.served.base_url}/"}
        )
        account = Account(
            (CLIENT_ID, CLIENT_SECRET),
            protocol=proto(timezone=BERLIN),
            token_backend=backend,
            requests_delay=0,
        )
        assert account.is_authenticated and account.username == "alice@contoso.test"
        assert account.schedule().get_default_calendar().name == "Calendar"
    finally:
        login.stop()


def test_client_credentials_declined_consent_and_form_post(sb: Sandbox) -> None:
    tenant = sb.state.tenant_id
    with httpx.Client(base_url=sb.served.base_url, trust_env=False) as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        }
        app_token = http.post(f"/{tenant}/oauth2/v2.0/token", data=form).json()
        assert "refresh_token" not in app_token and "id_token" not in app_token
        wrong = http.post(f"/{tenant}/oauth2/v2.0/token", data={**form, "client_secret": "x"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"

        sb.state.identity.deny_consent = 1
        query = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "openid offline_access",
            "state": "st-9",
        }
        declined = http.get(f"/{tenant}/oauth2/v2.0/authorize", params=query)
        reply = parse_qs(urlsplit(declined.headers["location"]).query)
        assert (reply["error"], reply["state"]) == (["access_denied"], ["st-9"])
        posted = http.get(
            f"/{tenant}/oauth2/v2.0/authorize", params={**query, "response_mode": "form_post"}
        )
        assert posted.status_code == 200 and 'name="code"' in posted.text
    with sb.client(app_token["access_token"]) as client:
        assert client.get(f"/users/{sb.user.upn}/calendar").status_code == 200
        assert client.get("/me").status_code == 400  # /me needs a delegated token


def test_api_requires_a_valid_bearer_token(sb: Sandbox) -> None:
    with httpx.Client(base_url=sb.api, trust_env=False) as anonymous:
        answer = anonymous.get("/me/events")
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    bob = sb.state.add_user("bob@contoso.test")
    with sb.client() as client:
        assert client.get(f"/users/{bob.upn}/events").status_code == 403
        sb.state.clock.advance(3600)
        expired = client.get("/me/events")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


# -- events through O365 ---------------------------------------------------------------------------


def test_o365_create_get_update_stale_if_match_and_delete(sb: Sandbox) -> None:
    account = o365_account(sb)
    calendar = account.schedule().get_default_calendar()
    event = calendar.new_event("Haircut")
    event.start = dt.datetime(2030, 3, 4, 9, 0, tzinfo=BERLIN)
    event.end = dt.datetime(2030, 3, 4, 10, 0, tzinfo=BERLIN)
    event.body = "<p>Bring <b>photos</b></p>"
    event.location = "Salon 1"
    assert event.save() and event.object_id

    fetched = calendar.get_event(event.object_id)
    assert fetched.subject == "Haircut" and fetched.location["displayName"] == "Salon 1"
    assert fetched.start == dt.datetime(2030, 3, 4, 9, 0, tzinfo=BERLIN)
    with sb.client() as client:
        raw = client.get(f"/me/events/{quote(event.object_id, safe='')}").json()
    assert raw["@odata.etag"] == f'W/"{raw["changeKey"]}"'
    assert raw["bodyPreview"] == "Bring photos" and raw["type"] == "singleInstance"
    assert "singleValueExtendedProperties" not in raw  # only with $expand

    fetched.subject = "Haircut and colour"
    assert fetched.save()
    url = account.schedule().build_url(f"/events/{event.object_id}")
    with pytest.raises(requests.HTTPError) as stale:
        account.con.patch(
            url, data={"subject": "lost update"}, headers={"If-Match": raw["@odata.etag"]}
        )
    assert stale.value.response.status_code == 412
    assert stale.value.response.json()["error"]["code"] == "ErrorIrresolvableConflict"
    with sb.client() as client:
        current = client.get(f"/me/events/{event.object_id}").json()
        assert current["subject"] == "Haircut and colour"
        assert current["changeKey"] != raw["changeKey"]
        ok = client.patch(
            f"/me/events/{event.object_id}",
            json={"subject": "Colour"},
            headers={"If-Match": current["@odata.etag"]},
        )
        assert ok.status_code == 200 and ok.json()["subject"] == "Colour"

    assert fetched.delete()
    with sb.client() as client:
        gone = client.get(f"/me/events/{event.object_id}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
        assert (
            client.patch(f"/me/events/{event.object_id}", json={"subject": "x"}).status_code == 404
        )
        assert client.delete(f"/me/events/{event.object_id}").status_code == 404


def test_retried_create_with_same_transaction_id_makes_one_event(sb: Sandbox) -> None:
    calendar = o365_account(sb).schedule().get_default_calendar()
    ids = []
    for _ in range(2):  # the client timed out and sends the same create again
        event = calendar.new_event("Booking 42")
        event.transaction_id = "calsync-booking-42"
        event.start = dt.datetime(2030, 3, 5, 14, 0, tzinfo=BERLIN)
        event.end = dt.datetime(2030, 3, 5, 15, 0, tzinfo=BERLIN)
        assert event.save()
        ids.append(event.object_id)
    assert ids[0] == ids[1]
    with sb.client() as client:
        listed = client.get("/me/calendar/events").json()["value"]
        again = client.post(
            "/me/events", json=event_body("other", 6, transactionId="calsync-booking-42")
        )
    assert [e["id"] for e in listed] == [ids[0]]
    assert listed[0]["transactionId"] == "calsync-booking-42"
    assert again.status_code == 201 and again.json()["id"] == ids[0]
    assert again.headers["x-sandbox-deduplicated"] == "transactionId"


def test_a_lost_answer_is_a_504_after_the_write_happened(sb: Sandbox) -> None:
    sb.state.faults.lose_answers(1, methods=["POST"])
    body = event_body("Booking 43", 5, transactionId="calsync-booking-43")
    with sb.client() as client:
        lost = client.post("/me/events", json=body)
        again = client.post("/me/events", json=body)  # the client retries the same create
        assert client.get("/me").status_code == 200  # only matching requests lose answers
    assert lost.status_code == 504 and lost.json()["error"]["code"] == "GatewayTimeout"
    assert again.status_code == 201 and again.headers["x-sandbox-deduplicated"] == "transactionId"
    assert [e.id for e in sb.state.list_events(sb.user.id, None)] == [again.json()["id"]]
    assert sb.state.faults.injected[504] == 1


def test_creating_a_calendar_and_a_taken_name(sb: Sandbox) -> None:
    with sb.client() as client:
        made = client.post("/me/calendars", json={"name": "Wix Bookings"})
        taken = client.post("/me/calendars", json={"name": "wix bookings"})
        nameless = client.post("/me/calendars", json={})
        names = [c["name"] for c in client.get("/me/calendars").json()["value"]]
    assert made.status_code == 201
    assert made.json()["canEdit"] is True and made.json()["isDefaultCalendar"] is False
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "ErrorFolderExists"
    assert nameless.status_code == 400
    assert names == ["Calendar", "Wix Bookings"]


def test_duplicate_transaction_id_can_answer_409_instead(sb: Sandbox) -> None:
    sb.state.settings.duplicate_transaction = "conflict"
    with sb.client() as client:
        first = client.post("/me/events", json=event_body("one", 4, transactionId="t-1"))
        again = client.post("/me/events", json=event_body("one", 4, transactionId="t-1"))
    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    assert len(sb.state.list_events(sb.user.id, None)) == 1


def test_extended_properties_hidden_unless_expanded_and_filterable(sb: Sandbox) -> None:
    with sb.client() as client:
        tagged = client.post(
            "/me/events",
            json=event_body(
                "tagged", 4, singleValueExtendedProperties=[{"id": TAG, "value": "link-1"}]
            ),
        ).json()
        client.post("/me/events", json=event_body("plain", 5))
        assert "singleValueExtendedProperties" not in tagged
        expanded = client.get(
            f"/me/events/{tagged['id']}",
            params={"$expand": f"singleValueExtendedProperties($filter=id eq '{TAG}')"},
        ).json()
        assert expanded["singleValueExtendedProperties"] == [{"id": TAG, "value": "link-1"}]
        found = client.get(
            "/me/events",
            params={
                "$filter": (
                    f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG}' "
                    "and ep/value eq 'LINK-1')"
                )
            },
        )
    assert [e["subject"] for e in found.json()["value"]] == ["tagged"]


def test_o365_do_not_forward_property_is_stored(sb: Sandbox) -> None:
    calendar = o365_account(sb).schedule().get_default_calendar()
    event = calendar.new_event("o365")
    event.start = dt.datetime(2030, 3, 6, 9, tzinfo=BERLIN)
    event.end = dt.datetime(2030, 3, 6, 10, tzinfo=BERLIN)
    assert event.save()
    with sb.client() as client:
        got = client.get(
            f"/me/events/{event.object_id}",
            params={"$expand": f"singleValueExtendedProperties($filter=id eq '{DO_NOT_FORWARD}')"},
        ).json()
    assert got["singleValueExtendedProperties"] == [{"id": DO_NOT_FORWARD, "value": "false"}]


def test_bad_writes_are_refused_with_graph_errors(sb: Sandbox) -> None:
    holidays = sb.state.add_calendar(sb.user.id, "Holidays", can_edit=False)
    seeded = sb.seed(event_body("Easter", 10), calendar_id=holidays.id)
    with sb.client() as client:
        calendars = client.get("/me/calendars").json()["value"]
        assert {c["name"]: c["canEdit"] for c in calendars} == {"Calendar": True, "Holidays": False}
        for answer in (
            client.post(f"/me/calendars/{holidays.id}/events", json=event_body("x", 11)),
            client.patch(f"/me/events/{seeded}", json={"subject": "y"}),
            client.delete(f"/me/events/{seeded}"),
        ):
            assert answer.status_code == 403
            assert answer.json()["error"]["code"] == "ErrorAccessDenied"
        unknown = client.post("/me/events", json=event_body("x", 4, colour="red"))
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "RequestBodyRead"
        backwards = client.post(
            "/me/events", json={"subject": "x", "start": when(4, 10), "end": when(4, 9)}
        )
        assert backwards.status_code == 400
    assert len(sb.state.list_events(sb.user.id, None)) == 0


def test_prefer_time_zone_and_all_day_dates(sb: Sandbox) -> None:
    cet = "W. Europe Standard Time"
    day = {"dateTime": "2030-03-10T00:00:00", "timeZone": cet}
    next_day = {"dateTime": "2030-03-11T00:00:00", "timeZone": cet}
    pacific = {"Prefer": 'outlook.timezone="Pacific Standard Time"'}
    with sb.client() as client:
        all_day = client.post(
            "/me/events", json={"subject": "off", "isAllDay": True, "start": day, "end": next_day}
        ).json()
        timed = client.post("/me/events", json=event_body("call", 10, 17)).json()
        assert timed["start"] == {"dateTime": "2030-03-10T17:00:00.0000000", "timeZone": "UTC"}
        seen = client.get(f"/me/events/{all_day['id']}", headers=pacific).json()
        assert seen["start"] == {
            "dateTime": "2030-03-10T00:00:00.0000000",
            "timeZone": "Pacific Standard Time",
        }
        assert seen["isAllDay"] and seen["originalStartTimeZone"] == cet
        shifted = client.get(f"/me/events/{timed['id']}", headers=pacific).json()
        assert shifted["start"]["dateTime"] == "2030-03-10T10:00:00.0000000"  # PDT, UTC-7
        not_midnight = client.post("/me/events", json={**event_body("bad", 12), "isAllDay": True})
        assert not_midnight.status_code == 400
        unknown_zone = client.get("/me/events", headers={"Prefer": 'outlook.timezone="Mars"'})
        assert unknown_zone.json()["error"]["code"] == "TimeZoneNotSupportedException"


# -- recurrence ----------------------------------------------------------------------------------


def test_recurring_series_with_modified_and_cancelled_occurrences(sb: Sandbox) -> None:
    series = event_body("Standup", 4, 8, recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
        "range": {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 6},
    })  # fmt: skip
    with sb.client() as client:
        master = client.post("/me/events", json=series).json()
        assert master["type"] == "seriesMaster"
        view = client.get("/me/calendarView", params=WINDOW).json()["value"]
        assert [v["start"]["dateTime"][:10] for v in view] == [
            "2030-03-04",
            "2030-03-06",
            "2030-03-11",
            "2030-03-13",
            "2030-03-18",
            "2030-03-20",
        ]
        assert {(v["type"], v["seriesMasterId"]) for v in view} == {("occurrence", master["id"])}

        moved, cancelled = view[1], view[2]
        patched = client.patch(
            f"/me/events/{moved['id']}",
            json={"subject": "Standup (moved)", "start": when(6, 11), "end": when(6, 12)},
        ).json()
        assert (patched["id"], patched["type"]) == (moved["id"], "exception")
        assert patched["originalStart"] == "2030-03-06T08:00:00Z"
        assert client.delete(f"/me/events/{cancelled['id']}").status_code == 204

        view = client.get("/me/calendarView", params=WINDOW).json()["value"]
        assert len(view) == 5 and cancelled["id"] not in {v["id"] for v in view}
        exception = next(v for v in view if v["id"] == moved["id"])
        assert exception["subject"] == "Standup (moved)"
        assert exception["start"]["dateTime"] == "2030-03-06T11:00:00.0000000"
        assert client.get(f"/me/events/{cancelled['id']}").status_code == 404
        listed = client.get("/me/events").json()["value"]
        assert [e["type"] for e in listed] == ["seriesMaster"]
        instances = client.get(f"/me/events/{master['id']}/instances", params=WINDOW).json()
        assert len(instances["value"]) == 5

    calendar = o365_account(sb).schedule().get_default_calendar()
    o365_view = list(
        calendar.get_events(
            limit=50,
            start_recurring=dt.datetime(2030, 3, 1, tzinfo=BERLIN),
            end_recurring=dt.datetime(2030, 4, 1, tzinfo=BERLIN),
        )
    )
    assert sorted(e.subject for e in o365_view) == ["Standup"] * 4 + ["Standup (moved)"]
    assert {e.series_master_id for e in o365_view} == {master["id"]}


# -- delta ----------------------------------------------------------------------------------------


def test_delta_pages_then_changes_and_removals(sb: Sandbox) -> None:
    inside = [sb.seed(event_body(f"e{i}", 2 + i)) for i in range(5)]
    sb.seed(event_body("far away", 5, month=5))
    with sb.client() as client:
        selected = client.get("/me/calendarView/delta", params={**WINDOW, "$select": "subject"})
        assert selected.status_code == 400
        items, next_links, delta_link = follow_delta(client, sb.delta_start(), page_size=2)
        assert sorted(i["id"] for i in items) == sorted(inside)
        assert len(next_links) == 2 and all("$skiptoken=" in link for link in next_links)
        assert "$deltatoken=" in delta_link

        sb.state.update_event(sb.user.id, inside[0], {"subject": "e0 renamed"})
        sb.state.delete_event(sb.user.id, inside[1])
        sb.state.update_event(
            sb.user.id, inside[2], {"start": when(2, 9, 5), "end": when(2, 10, 5)}
        )
        added = sb.seed(event_body("new", 20))
        outside = sb.seed(event_body("also far", 9, month=6))

        changes, _, delta_link = follow_delta(client, delta_link)
        full = {i["id"]: i for i in changes if "@removed" not in i}
        removed = {i["id"]: i for i in changes if "@removed" in i}
        assert set(full) == {inside[0], added}
        assert full[inside[0]]["subject"] == "e0 renamed"
        assert set(removed) == {inside[1], inside[2], outside}  # deleted, moved out, out of window
        assert removed[inside[1]] == {
            "@odata.type": "#microsoft.graph.event",
            "id": inside[1],
            "@removed": {"reason": "deleted"},
        }

        quiet, _, _ = follow_delta(client, delta_link)
        assert quiet == []


def test_delta_of_series_reports_exception_and_cancelled_occurrence(sb: Sandbox) -> None:
    master = sb.seed(
        event_body(
            "Daily",
            2,
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "endDate", "startDate": "2030-03-02", "endDate": "2030-03-04"},
            },
        )
    )
    with sb.client() as client:
        first, _, link = follow_delta(client, sb.delta_start())
        assert [i["type"] for i in first] == ["occurrence"] * 3
        sb.state.update_event(sb.user.id, first[0]["id"], {"subject": "Daily (late)"})
        sb.state.delete_event(sb.user.id, first[2]["id"])
        changes, _, _ = follow_delta(client, link)
    by_id = {i["id"]: i for i in changes}
    assert by_id[first[0]["id"]]["type"] == "exception"
    assert by_id[first[2]["id"]]["@removed"] == {"reason": "deleted"}
    assert master not in by_id  # masters never appear in a calendar view


def test_expired_delta_token_answers_410_with_fresh_location(sb: Sandbox) -> None:
    sb.seed(event_body("one", 3))
    start = sb.delta_start()
    with sb.client() as client:
        _, _, link = follow_delta(client, start)
        assert sb.state.expire_delta_tokens() >= 1
        gone = client.get(link)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "resyncRequired"
        restart = gone.headers["location"]
        assert "startDateTime=2030-03-01" in restart and "$deltatoken=" in restart
        items, _, link = follow_delta(client, restart)
        assert [i["subject"] for i in items] == ["one"]

        sb.state.settings.delta_expiry = "syncStateNotFound"
        sb.state.settings.delta_token_ttl = dt.timedelta(minutes=10)
        sb.state.clock.advance(601)
        expired = client.get(link)
        assert expired.status_code == 400
        assert expired.json()["error"]["code"] == "syncStateNotFound"


# -- subscriptions and notifications -------------------------------------------------------------


def test_subscription_handshake_on_both_urls_then_201(sb: Sandbox) -> None:
    created = subscribe(sb)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["changeType"] == "created,updated,deleted"
    assert body["clientState"] == "s3cret-state" and body["resource"] == "/me/events"
    assert body["applicationId"] == CLIENT_ID and body["creatorId"] == sb.user.id
    paths = [v[0] for v in sb.receiver.validations]
    assert paths == ["notify", "lifecycle"]
    for _, token, content_type in sb.receiver.validations:
        assert token.startswith("Validation: ") and " " in token  # decoded by the receiver
        assert content_type == "text/plain; charset=utf-8"
    with sb.client() as client:
        assert client.get(f"/subscriptions/{body['id']}").json()["id"] == body["id"]


@pytest.mark.parametrize(
    "notify, lifecycle", [("wrong", "lifecycle"), ("encoded", None), ("notify", "wrong")]
)
def test_failed_handshake_is_400_and_creates_nothing(
    sb: Sandbox, notify: str, lifecycle: str | None
) -> None:
    answer = subscribe(sb, notify, lifecycle)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ValidationError"
    with sb.client() as client:
        assert client.get("/subscriptions").json()["value"] == []


def test_subscription_request_rules(sb: Sandbox) -> None:
    too_far = (sb.state.now() + dt.timedelta(minutes=10_081)).isoformat()
    past = (sb.state.now() - dt.timedelta(minutes=1)).isoformat()
    for extra in (
        {"expirationDateTime": too_far},
        {"expirationDateTime": past},
        {"clientState": "x" * 129},
        {"resource": "/me/messages"},
        {"notificationUrl": "https://example.com/hook"},
        {"changeType": "moved"},
    ):
        answer = subscribe(sb, **extra)
        assert answer.status_code == 400, extra
    assert sb.receiver.validations == []  # rejected before any handshake


def test_change_notifications_carry_client_state(sb: Sandbox) -> None:
    sub = subscribe(sb).json()
    event_id = sb.seed(event_body("made in Outlook", 4))
    note = sb.receiver.wait(lambda r: r.path == "notify")
    item = note.item
    assert item["clientState"] == "s3cret-state" and item["subscriptionId"] == sub["id"]
    assert (item["changeType"], item["resourceData"]["id"]) == ("created", event_id)
    assert item["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert item["tenantId"] == sb.state.tenant_id and event_id in item["resource"]

    with sb.client() as client:
        patched = client.patch(f"/me/events/{event_id}", json={"subject": "moved"})
        etag = patched.json()["@odata.etag"]
        client.delete(f"/me/events/{event_id}")
    updated = sb.receiver.wait(lambda r: r.item.get("changeType") == "updated")
    assert updated.item["resourceData"]["@odata.etag"] == etag
    deleted = sb.receiver.wait(lambda r: r.item.get("changeType") == "deleted")
    assert deleted.item["resourceData"]["id"] == event_id

    sb.state.faults.corrupt_client_state(1)
    sb.seed(event_body("forged", 5))
    forged = sb.receiver.wait(
        lambda r: r.item["changeType"] == "created" and r.item["resourceData"]["id"] != event_id
    )
    assert forged.item["clientState"] != "s3cret-state"


def _is_lifecycle(event: str, received: Received) -> bool:
    return bool(received.item.get("lifecycleEvent") == event)


def test_each_lifecycle_event_is_delivered(sb: Sandbox) -> None:
    sub_id = subscribe(sb).json()["id"]
    for event in ("reauthorizationRequired", "missed"):
        sb.state.send_lifecycle_event(sub_id, event)
        got = sb.receiver.wait(partial(_is_lifecycle, event))
        assert got.path == "lifecycle"
        assert got.item["subscriptionId"] == sub_id
        assert got.item["clientState"] == "s3cret-state"
    with sb.client() as client:
        assert client.post(f"/subscriptions/{sub_id}/reauthorize").status_code == 204
        admin = client.post(
            f"{sb.served.base_url}/_sandbox/subscriptions/{sub_id}/lifecycle",
            json={"event": "subscriptionRemoved"},
        )
        assert admin.status_code == 202
        sb.receiver.wait(lambda r: r.item.get("lifecycleEvent") == "subscriptionRemoved")
        assert client.get(f"/subscriptions/{sub_id}").status_code == 404


def test_reauthorization_pause_loses_changes_until_reauthorized(sb: Sandbox) -> None:
    sub_id = subscribe(sb).json()["id"]
    sb.state.send_lifecycle_event(sub_id, "reauthorizationRequired", pause=True)
    sb.seed(event_body("during pause", 4))
    assert sb.state.notifier.wait_idle()
    assert [r.path for r in sb.receiver.received] == ["lifecycle"]
    with sb.client() as client:
        renewed = client.patch(
            f"/subscriptions/{sub_id}",
            json={"expirationDateTime": (sb.state.now() + dt.timedelta(days=2)).isoformat()},
        )
    assert renewed.status_code == 200
    later = sb.seed(event_body("after renewal", 5))
    sb.receiver.wait(lambda r: r.path == "notify" and r.item["resourceData"]["id"] == later)


def test_renew_delete_and_expiry(sb: Sandbox) -> None:
    sub_id = subscribe(sb).json()["id"]
    new_expiry = sb.state.now() + dt.timedelta(days=3)
    with sb.client() as client:
        renewed = client.patch(
            f"/subscriptions/{sub_id}", json={"expirationDateTime": new_expiry.isoformat()}
        )
        assert renewed.status_code == 200
        assert renewed.json()["expirationDateTime"].startswith(
            new_expiry.strftime("%Y-%m-%dT%H:%M:%S")
        )
        late_lifecycle = {"lifecycleNotificationUrl": sb.hook("other")}
        assert client.patch(f"/subscriptions/{sub_id}", json=late_lifecycle).status_code == 400
        too_long = {"expirationDateTime": (sb.state.now() + dt.timedelta(days=8)).isoformat()}
        assert client.patch(f"/subscriptions/{sub_id}", json=too_long).status_code == 400
        assert client.delete(f"/subscriptions/{sub_id}").status_code == 204
        assert client.get(f"/subscriptions/{sub_id}").status_code == 404

        short = subscribe(sb).json()["id"]
    sb.state.clock.advance(2 * 3600)  # past its one-hour expiry (and the access token's)
    fresh = sb.state.identity.issue_tokens(sb.user.id, client_id=CLIENT_ID)["access_token"]
    with sb.client(fresh) as client:
        assert client.get(f"/subscriptions/{short}").status_code == 404
    sb.seed(event_body("nobody listens", 4))
    assert sb.state.notifier.wait_idle()
    assert not [r for r in sb.receiver.received if r.path == "notify"]


def test_failed_and_slow_deliveries_are_retried_and_drops_lose_one(sb: Sandbox) -> None:
    subscribe(sb, "flaky", None)
    first = sb.seed(event_body("retried", 4))
    sb.state.notifier.wait_for(lambda d: d.ok and d.items[0]["resourceData"]["id"] == first)
    attempts = [
        d for d in sb.state.notifier.deliveries if d.items[0]["resourceData"]["id"] == first
    ]
    assert [(d.attempt, d.status) for d in attempts] == [(1, 500), (2, 202)]

    sb.state.faults.drop_notifications(1)
    lost = sb.seed(event_body("lost", 5))
    sb.state.notifier.wait_for(lambda d: d.dropped)
    kept = sb.seed(event_body("kept", 6))
    sb.state.notifier.wait_for(lambda d: d.ok and d.items[0]["resourceData"]["id"] == kept)
    assert not any(r.item["resourceData"]["id"] == lost for r in sb.receiver.received)

    subscribe(sb, "slow", None)
    slow = sb.seed(event_body("slow", 7))
    timed_out = sb.state.notifier.wait_for(
        lambda d: d.url.endswith("/slow") and d.items[0]["resourceData"]["id"] == slow
    )
    assert not timed_out.ok and "Timeout" in (timed_out.error or "")


# -- throttling and server errors ------------------------------------------------------------------


def test_throttling_answers_429_with_retry_after(sb: Sandbox) -> None:
    sb.state.faults.throttle(1, retry_after=3)
    with sb.client() as client:
        throttled = client.get("/me/events")
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "3"
        assert throttled.json()["error"]["code"] == "TooManyRequests"
        assert client.get("/me/events").status_code == 200

        sb.state.faults.throttle(None, share=0.5, retry_after=1)  # a storm: half of all requests
        storm = [client.get("/me/events") for _ in range(20)]
        statuses = {r.status_code for r in storm}
        assert statuses == {200, 429}
        assert all(r.headers["retry-after"] == "1" for r in storm if r.status_code == 429)
        sb.state.faults.clear()

        sb.state.faults.limit_rate(3, 60)
        assert [client.get("/me").status_code for _ in range(4)] == [200, 200, 200, 429]
        sb.state.clock.advance(61)
        assert client.get("/me").status_code == 200
        sb.state.faults.clear()

        sb.state.faults.fail(1, status=503, retry_after=2)
        unavailable = client.get("/me/events")
        assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "2"
        assert unavailable.json()["error"]["code"] == "ServiceUnavailable"


def test_o365_retries_throttled_get_but_not_post(sb: Sandbox) -> None:
    calendar = o365_account(sb).schedule().get_default_calendar()
    sb.state.faults.throttle(2, retry_after=0)
    assert list(calendar.get_events(include_recurring=False)) == []  # two 429s retried away
    assert sb.state.faults.injected[429] == 2

    sb.state.faults.throttle(1, retry_after=0)
    event = calendar.new_event("throttled create")
    event.start = dt.datetime(2030, 3, 4, 9, tzinfo=BERLIN)
    event.end = dt.datetime(2030, 3, 4, 10, tzinfo=BERLIN)
    with pytest.raises(requests.HTTPError) as refused:
        event.save()
    assert refused.value.response.status_code == 429
    assert sb.state.list_events(sb.user.id, None) == []


# -- admin routes ---------------------------------------------------------------------------------


def test_admin_routes_seed_users_events_tokens_and_faults(sb: Sandbox) -> None:
    admin = f"{sb.served.base_url}/_sandbox"
    with httpx.Client(trust_env=False) as http:
        carol = http.post(f"{admin}/users", json={"upn": "carol@contoso.test"}).json()
        token = http.post(f"{admin}/tokens", json={"user": carol["id"]}).json()["access_token"]
        seeded = http.post(f"{admin}/users/{carol['id']}/events", json=event_body("seeded", 4))
        assert seeded.status_code == 201
        throttle = http.post(f"{admin}/faults/throttle", json={"count": 1, "retryAfter": 5})
        assert throttle.status_code == 200
        assert http.post(f"{admin}/users", json={}).status_code == 400
        with sb.client(token) as client:
            assert client.get("/me/events").status_code == 429
            assert [e["subject"] for e in client.get("/me/events").json()["value"]] == ["seeded"]
        assert http.delete(f"{admin}/faults").status_code == 204
