"""The v1 approval link is bound to the account it was sent to, through the real OAuth flow
against the Google sandbox: that account connects at once; another one connects nothing until
its owner confirms it on a page naming both (a POST whose ticket works once); a forged, replayed
or cross-site confirmation is refused and changes nothing."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from conftest import ALICE, Queued, TenantKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from config import Settings
from models import Connection, SyncRequest, SyncRequestStatus
from models.db import session_scope
from models.sync_request import approval_token
from sandbox.google import GoogleState
from sandbox.server import ServedApp

V1 = "/bookings/v1/externalCalendar"
BOB = "bob@example.com"


@pytest.fixture(autouse=True)
def bob(google: tuple[GoogleState, ServedApp]) -> None:
    google[0].add_account(BOB, name="Bob")


def ask(client: TestClient, tenant: TenantKey, settings: Settings, resource: str,
        email: str = ALICE) -> str:  # fmt: skip
    """A sync request for the resource; the token of its approval link."""
    answer = client.post(f"{V1}/sync", headers=tenant.headers,
                         json={"resourceId": resource, "syncRequestEmail": email})  # fmt: skip
    assert answer.status_code == 200
    return approval_token(settings, request_of(client, resource).id)


def request_of(client: TestClient, resource: str) -> SyncRequest:
    with session_scope(client.app.state.engine) as db:  # type: ignore[attr-defined]
        found = db.scalars(select(SyncRequest).where(SyncRequest.resource_id == resource)
                           .order_by(SyncRequest.created_at.desc())).first()  # fmt: skip
        assert found is not None
        db.expunge(found)
        return found


def sign_in(client: TestClient, token: str, account: str | None = None) -> httpx.Response:
    """Open the link, go to Google's consent screen (as `account`, else the one Google picks),
    and come back to calsync's callback; its answer."""
    to_google = client.get(f"/approve/{token}/start", follow_redirects=False)
    consent_url = to_google.headers["location"]
    if account is not None:  # the person picks another account on Google's screen
        consent_url += "&" + urlencode({"sandbox_user": account})
    consent = httpx.get(consent_url, follow_redirects=False)
    back = urlsplit(consent.headers["location"])
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def connections(engine: Engine) -> list[tuple[str | None, str]]:
    with session_scope(engine) as db:
        rows = db.execute(select(Connection.external_account_email, Connection.schedule_id))
        return sorted((email, schedule) for email, schedule in rows)


def ticket_of(confirm_page: str) -> str:
    found = re.search(r'name="ticket" value="([^"]+)"', confirm_page)
    assert found is not None
    return html.unescape(found.group(1))


def test_the_account_asked_connects_at_once(
    client: TestClient, tenant: TenantKey, api_settings: Settings, engine: Engine
) -> None:
    token = ask(client, tenant, api_settings, "res-a", email="Alice@Example.COM")
    to_google = client.get(f"/approve/{token}/start", follow_redirects=False)
    hint = parse_qs(urlsplit(to_google.headers["location"]).query)["login_hint"]
    assert hint == ["Alice@Example.COM"]  # Google pre-selects the account asked
    back = sign_in(client, token)
    assert back.headers["location"].startswith(f"{api_settings.public_base_url}approve/done?"
                                               "connectionId=")  # fmt: skip
    assert connections(engine) == [(ALICE, "res-a")]
    approved = request_of(client, "res-a")
    assert (approved.status, approved.approved_by, approved.confirmed_at) == (
        SyncRequestStatus.APPROVED, ALICE, None)  # fmt: skip


def test_another_account_connects_only_once_its_owner_confirms(
    client: TestClient, tenant: TenantKey, api_settings: Settings, engine: Engine,
    queued: Queued,
) -> None:  # fmt: skip
    token = ask(client, tenant, api_settings, "res-b")
    back = sign_in(client, token, account=BOB)
    assert back.status_code == 302
    assert urlsplit(back.headers["location"]).path == "/approve/confirm"
    assert connections(engine) == []
    assert request_of(client, "res-b").status is SyncRequestStatus.PENDING
    status = client.get(f"{V1}/status/res-b", headers=tenant.headers).json()
    assert status["statuses"][0]["status"] == "PENDING"

    page = client.get(back.headers["location"])
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert ALICE in page.text and BOB in page.text and "Nothing is connected" in page.text
    assert f"/approve/{token}/start" in page.text  # or sign in again
    assert connections(engine) == []  # looking is not confirming

    confirmed = client.post("/approve/confirm", data={"ticket": ticket_of(page.text)},
                            follow_redirects=False)  # fmt: skip
    assert confirmed.status_code == 303
    assert "/approve/done?connectionId=" in confirmed.headers["location"]
    assert connections(engine) == [(BOB, "res-b")]
    approved = request_of(client, "res-b")
    assert (approved.status, approved.approved_by) == (SyncRequestStatus.APPROVED, BOB)
    assert approved.confirmed_at is not None
    synced = [args for name, args in queued("sync") if name.endswith("sync_calendar")]
    assert len(synced) == 1
    assert "Calendar connected" in client.get(confirmed.headers["location"]).text


def test_a_forged_replayed_or_cross_site_confirmation_is_refused(
    client: TestClient, tenant: TenantKey, api_settings: Settings, engine: Engine
) -> None:
    token = ask(client, tenant, api_settings, "res-c")
    ticket = ticket_of(client.get(sign_in(client, token, account=BOB).headers["location"]).text)
    request_id, nonce, signature = ticket.split(".")

    def confirm(value: str, **headers: str) -> httpx.Response:
        return client.post("/approve/confirm", data={"ticket": value}, headers=headers,
                           follow_redirects=False)  # fmt: skip

    assert confirm(f"{request_id}.{nonce}.{signature[:-2]}AA").status_code == 400
    assert confirm(f"{request_id}x.{nonce}.{signature}").status_code == 400
    assert confirm("not-a-ticket").status_code == 400
    assert confirm("").status_code == 400
    assert client.get("/approve/confirm", params={"ticket": f"{ticket}x"}).status_code == 400
    assert confirm(ticket, Origin="https://elsewhere.example").status_code == 403
    assert connections(engine) == []

    assert confirm(ticket).status_code == 303  # the genuine one, from calsync's own page
    replayed = confirm(ticket)
    assert replayed.status_code == 404 and "used already" in replayed.text
    assert client.get("/approve/confirm", params={"ticket": ticket}).status_code == 404
    assert connections(engine) == [(BOB, "res-c")]


def test_signing_in_again_as_the_account_asked_leaves_the_other_unconnected(
    client: TestClient, tenant: TenantKey, api_settings: Settings, engine: Engine
) -> None:
    token = ask(client, tenant, api_settings, "res-d")
    held = client.get(sign_in(client, token, account=BOB).headers["location"])
    again = sign_in(client, token)  # the page's other choice: Google pre-selects Alice
    assert "connectionId=" in again.headers["location"]
    late = client.post("/approve/confirm", data={"ticket": ticket_of(held.text)},
                       follow_redirects=False)  # fmt: skip
    assert late.status_code == 404
    assert connections(engine) == [(ALICE, "res-d")]
    assert request_of(client, "res-d").confirmed_at is None


def test_a_request_withdrawn_while_waiting_for_confirmation_connects_nothing(
    client: TestClient, tenant: TenantKey, api_settings: Settings, engine: Engine
) -> None:
    token = ask(client, tenant, api_settings, "res-e")
    held = client.get(sign_in(client, token, account=BOB).headers["location"])
    client.post(f"{V1}/unsync", headers=tenant.headers, json={"resourceId": "res-e"})
    late = client.post("/approve/confirm", data={"ticket": ticket_of(held.text)},
                       follow_redirects=False)  # fmt: skip
    assert late.status_code == 404 and "not valid" in late.text
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(Connection)) == 0
