"""Microsoft sign-in with the real MSAL against the Graph sandbox's identity platform (HTTPS on
loopback), and the provider's token handling around real Graph calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from providers.base import SyncWindow
from providers.errors import PermanentError, PermanentReason
from providers.microsoft.account import MicrosoftAccount
from providers.microsoft.auth import MicrosoftAuth, MicrosoftTokens
from sandbox.graph.harness import GraphHarness, graph_harness

WINDOW = SyncWindow(datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))


@pytest.fixture
def graph() -> Iterator[GraphHarness]:
    with graph_harness() as harness:
        yield harness


@pytest.fixture
def auth(graph: GraphHarness) -> MicrosoftAuth:
    return MicrosoftAuth(
        graph.client_id, graph.client_secret, graph.authority, http_client=graph.login_session()
    )


def signed_in(graph: GraphHarness, auth: MicrosoftAuth) -> MicrosoftTokens:
    reply = graph.authorize(auth.consent_url(graph.redirect_uri, "signed-state-1"))
    return auth.exchange_code(reply["code"], graph.redirect_uri)


def test_consent_url_asks_for_calendar_scopes_and_carries_the_state(
    graph: GraphHarness, auth: MicrosoftAuth
) -> None:
    url = auth.consent_url(graph.redirect_uri, "signed-state-1")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{graph.authority}/oauth2/v2.0/authorize?")
    assert query["state"] == ["signed-state-1"]
    assert query["redirect_uri"] == [graph.redirect_uri]
    scopes = set(query["scope"][0].split())
    assert {"offline_access", "openid", "profile"} <= scopes  # MSAL adds these itself
    assert "https://graph.microsoft.com/Calendars.ReadWrite" in scopes
    assert graph.authorize(url)["state"] == "signed-state-1"


def test_code_exchange_gives_tokens_with_account_and_refresh(
    graph: GraphHarness, auth: MicrosoftAuth
) -> None:
    tokens = signed_in(graph, auth)
    assert tokens.username == "alice@contoso.test"
    assert tokens.account_id == f"{graph.user.id}.{graph.state.tenant_id}"
    assert tokens.refresh_token and "Calendars.ReadWrite" in tokens.scopes
    assert not tokens.expires_within(3000)
    assert "access_token" not in repr(tokens) and tokens.access_token not in repr(tokens)
    assert MicrosoftTokens.from_dict(tokens.to_dict()) == tokens

    refreshed = auth.refresh(tokens)
    assert refreshed.access_token != tokens.access_token
    assert (refreshed.username, refreshed.account_id) == (tokens.username, tokens.account_id)
    account = MicrosoftAccount(refreshed, auth=auth, graph_base_url=graph.graph_base_url)
    assert [c.name for c in account.list_calendars()] == ["Calendar"]


def test_a_code_is_redeemed_once(graph: GraphHarness, auth: MicrosoftAuth) -> None:
    reply = graph.authorize(auth.consent_url(graph.redirect_uri, "s"))
    auth.exchange_code(reply["code"], graph.redirect_uri)
    with pytest.raises(PermanentError) as refused:
        auth.exchange_code(reply["code"], graph.redirect_uri)
    assert refused.value.reason is PermanentReason.TOKEN_REVOKED
    assert "invalid_grant" in str(refused.value)


def test_refresh_refused_for_good_is_token_revoked(
    graph: GraphHarness, auth: MicrosoftAuth
) -> None:
    tokens = signed_in(graph, auth)
    assert graph.state.identity.revoke_refresh_tokens(graph.user.id) >= 1
    with pytest.raises(PermanentError) as refused:
        auth.refresh(tokens)
    assert refused.value.reason is PermanentReason.TOKEN_REVOKED
    assert tokens.refresh_token not in str(refused.value)


def test_wrong_client_secret_is_forbidden(graph: GraphHarness) -> None:
    wrong = MicrosoftAuth(
        graph.client_id, "not-the-secret", graph.authority, http_client=graph.login_session()
    )
    reply = graph.authorize(wrong.consent_url(graph.redirect_uri, "s"))
    with pytest.raises(PermanentError) as refused:
        wrong.exchange_code(reply["code"], graph.redirect_uri)
    assert refused.value.reason is PermanentReason.FORBIDDEN


def test_a_refused_access_token_is_refreshed_once_and_saved(
    graph: GraphHarness, auth: MicrosoftAuth
) -> None:
    tokens = signed_in(graph, auth)
    saved: list[MicrosoftTokens] = []
    account = MicrosoftAccount(
        tokens, auth=auth, graph_base_url=graph.graph_base_url, on_tokens=saved.append
    )
    graph.state.identity.expire_access_tokens(graph.user.id)  # Graph now answers 401
    assert account.list_calendars()[0].primary
    assert len(saved) == 1 and saved[0].access_token != tokens.access_token
    assert account.tokens == saved[0]


def test_a_token_near_expiry_is_refreshed_before_the_request(
    graph: GraphHarness, auth: MicrosoftAuth
) -> None:
    tokens = signed_in(graph, auth)
    stale = MicrosoftTokens(
        tokens.access_token,
        tokens.refresh_token,
        datetime.now(UTC) + timedelta(seconds=30),
        tokens.username,
        tokens.account_id,
        tokens.scopes,
    )
    saved: list[MicrosoftTokens] = []
    account = MicrosoftAccount(
        stale, auth=auth, graph_base_url=graph.graph_base_url, on_tokens=saved.append
    )
    account.list_calendars()
    assert len(saved) == 1 and not saved[0].expires_within(600)


def test_tokens_stay_out_of_debug_logs(
    graph: GraphHarness, auth: MicrosoftAuth, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = signed_in(graph, auth)
    account = MicrosoftAccount(tokens, auth=auth, graph_base_url=graph.graph_base_url)
    graph.state.identity.expire_access_tokens(graph.user.id)
    with caplog.at_level(logging.DEBUG):
        account.list_calendars()  # a 401, a refresh, the request again
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Requesting (GET)" in logged  # O365 did log at DEBUG
    for secret in (tokens.access_token, account.tokens.access_token, tokens.refresh_token):
        assert secret not in logged


def test_revoked_sign_in_surfaces_as_token_revoked_from_a_calendar_call(
    graph: GraphHarness, auth: MicrosoftAuth
) -> None:
    tokens = signed_in(graph, auth)
    account = MicrosoftAccount(tokens, auth=auth, graph_base_url=graph.graph_base_url)
    calendar = account.calendar(account.list_calendars()[0], WINDOW)
    graph.state.identity.revoke_refresh_tokens(graph.user.id)
    graph.state.identity.expire_access_tokens(graph.user.id)
    with pytest.raises(PermanentError) as refused:
        calendar.list_changes(None)
    assert refused.value.reason is PermanentReason.TOKEN_REVOKED
