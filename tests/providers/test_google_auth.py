"""Google OAuth as calsync uses it, against the sandbox's consent and token endpoints over HTTP:
the consent URL, the code exchange (tokens and the account's email), refresh, revocation, and
google-auth refreshing by itself inside `GoogleAccount`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from harness.google import CLIENT_ID, REDIRECT, USER, Calls, GoogleWorld

from providers.errors import PermanentError, PermanentReason, RateLimited, TransientError
from providers.google.auth import (
    CALENDAR_SCOPE,
    GoogleOAuthClient,
    GoogleTokens,
    consent_url,
    exchange_code,
    refresh,
)


@pytest.fixture(autouse=True)
def fresh(world: GoogleWorld) -> None:
    world.reset()


def approve(url: str) -> dict[str, list[str]]:
    """Open the consent URL like a browser; the sandbox approves at once and redirects."""
    answer = httpx.get(url, trust_env=False)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def connect(world: GoogleWorld) -> GoogleTokens:
    url = consent_url(CLIENT_ID, REDIRECT, "signed-state", world.auth_url)
    code = approve(url)["code"][0]
    return exchange_code(code, REDIRECT, world.oauth_client)


def test_consent_url_asks_for_offline_calendar_access_and_the_email(world: GoogleWorld) -> None:
    url = consent_url(CLIENT_ID, REDIRECT, "signed-state", world.auth_url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(world.auth_url + "?")
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert set(params["scope"].split()) == {CALENDAR_SCOPE, "openid", "email"}
    assert params["response_type"] == "code" and params["redirect_uri"] == REDIRECT
    granted = approve(url)
    assert granted["state"] == ["signed-state"] and granted["code"][0]


def test_code_exchange_learns_the_account_and_refresh_keeps_the_refresh_token(
    world: GoogleWorld,
) -> None:
    before = datetime.now(UTC)
    tokens = connect(world)
    assert tokens.email == USER
    assert CALENDAR_SCOPE in tokens.scopes and tokens.refresh_token
    assert before + timedelta(seconds=3500) < tokens.expiry < before + timedelta(seconds=3700)
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    assert GoogleTokens.from_dict(tokens.to_dict()) == tokens

    renewed = refresh(tokens, world.oauth_client)
    assert renewed.access_token != tokens.access_token
    assert renewed.refresh_token == tokens.refresh_token and renewed.email == USER
    calendars = world.account(renewed).list_calendars()  # the new access token works
    assert [c.remote_id for c in calendars] == [USER]


def test_a_used_code_and_a_revoked_grant_are_refused_for_good(world: GoogleWorld) -> None:
    url = consent_url(CLIENT_ID, REDIRECT, "s", world.auth_url)
    code = approve(url)["code"][0]
    tokens = exchange_code(code, REDIRECT, world.oauth_client)
    with pytest.raises(PermanentError) as reused:
        exchange_code(code, REDIRECT, world.oauth_client)
    assert reused.value.reason is PermanentReason.TOKEN_REVOKED

    world.state.revoke_access(USER)
    with pytest.raises(PermanentError) as revoked:
        refresh(tokens, world.oauth_client)
    assert revoked.value.reason is PermanentReason.TOKEN_REVOKED
    assert tokens.refresh_token not in str(revoked.value)


def test_consent_without_the_calendar_scope_is_refused(world: GoogleWorld) -> None:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid email",  # the user unticked calendar access
        "access_type": "offline",
        "prompt": "consent",
    }
    code = approve(f"{world.auth_url}?{urlencode(params)}")["code"][0]
    with pytest.raises(PermanentError) as caught:
        exchange_code(code, REDIRECT, world.oauth_client)
    assert caught.value.reason is PermanentReason.FORBIDDEN


def test_token_endpoint_failures_are_transient_or_permanent(world: GoogleWorld) -> None:
    tokens = connect(world)
    faults = world.state.faults
    faults.fail(1, status=503, target="token")
    with pytest.raises(TransientError) as unavailable:
        refresh(tokens, world.oauth_client)
    assert not isinstance(unavailable.value, RateLimited)

    faults.rate_limit(1, status=429, target="token")
    with pytest.raises(RateLimited):
        refresh(tokens, world.oauth_client)

    wrong_secret = GoogleOAuthClient(CLIENT_ID, "not-the-secret", world.token_url)
    with pytest.raises(PermanentError) as refused:
        refresh(tokens, wrong_secret)
    assert refused.value.reason is PermanentReason.FORBIDDEN

    closed = GoogleOAuthClient(CLIENT_ID, "x", "http://127.0.0.1:9/token", timeout_seconds=2)
    with pytest.raises(TransientError):
        refresh(tokens, closed)
    assert refresh(tokens, world.oauth_client).access_token  # the faults were used up


def test_token_requests_go_through_before_request(world: GoogleWorld) -> None:
    calls = Calls()
    tokens = connect(world)
    hooked = GoogleOAuthClient(CLIENT_ID, world.oauth_client.client_secret, world.token_url,
                               before_request=calls)  # fmt: skip
    refresh(tokens, hooked)
    refresh(tokens, hooked)
    assert calls.count == 2


def test_the_api_client_refreshes_on_a_401_and_reports_new_tokens(world: GoogleWorld) -> None:
    calls = Calls()
    tokens = world.tokens()
    account = world.account(tokens, calls)
    assert [c.remote_id for c in account.list_calendars()] == [USER]
    assert calls.count == 1 and world.refreshed == []

    world.state.expire_access_tokens(USER)  # Google forgets the token before its expiry
    assert [c.remote_id for c in account.list_calendars()] == [USER]
    assert calls.count == 1 + 3  # the 401, the refresh, the retried request
    [renewed] = world.refreshed
    assert renewed.access_token != tokens.access_token
    assert renewed.refresh_token == tokens.refresh_token and renewed.email == USER
    assert account.tokens == renewed


def test_an_expired_access_token_is_refreshed_before_the_request(world: GoogleWorld) -> None:
    calls = Calls()
    stale = world.tokens()
    stale = GoogleTokens.from_dict(
        {**stale.to_dict(), "expiry": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    )
    account = world.account(stale, calls)
    account.list_calendars()
    assert calls.count == 2  # the refresh, then the request
    assert len(world.refreshed) == 1 and world.refreshed[0].expiry > datetime.now(UTC)


def test_a_revoked_grant_stops_the_api_client_with_token_revoked(world: GoogleWorld) -> None:
    account = world.account()
    world.state.revoke_access(USER)
    with pytest.raises(PermanentError) as caught:
        account.list_calendars()
    assert caught.value.reason is PermanentReason.TOKEN_REVOKED
    assert world.refreshed == []
