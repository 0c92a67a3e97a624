"""The OAuth `state`: signed, bound, short-lived, single-use (Redis), with clear refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from api.oauth.state import StateRefusal, StateRefused, consume, issue, verify_state
from config import Settings
from models.crypto import new_key

FIELDS: dict[str, Any] = {"tenant_id": "t1", "schedule_id": "s1", "provider": "google",
          "redirect_url": "https://studio.example/back?x=1"}  # fmt: skip


def with_keys(settings: Settings, *keys: str) -> Settings:
    return Settings.model_validate(settings.model_dump() | {"encryption_keys": ",".join(keys)})


def refusal(settings: Settings, token: str, provider: str = "google",
            now: float | None = None) -> StateRefusal:  # fmt: skip
    with pytest.raises(StateRefused) as caught:
        verify_state(settings, token, provider, now=now)
    return caught.value.reason


def test_a_state_carries_what_it_was_made_for(settings: Settings) -> None:
    token = issue(settings, **FIELDS, sync_request_id="r9")
    state = verify_state(settings, token, "google")
    assert (state.tenant_id, state.schedule_id, state.provider) == ("t1", "s1", "google")
    assert state.redirect_url == FIELDS["redirect_url"] and state.sync_request_id == "r9"
    assert abs(state.expires_at - (time.time() + settings.oauth_state_ttl)) < 5
    assert all(c.isalnum() or c in "-_." for c in token)  # safe in a URL as it is


def test_any_change_to_the_state_is_refused_as_tampered(settings: Settings) -> None:
    token = issue(settings, **FIELDS)
    payload, signature = token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert refusal(settings, f"{flipped}.{signature}") is StateRefusal.TAMPERED
    assert refusal(settings, f"{payload}.{signature[::-1]}") is StateRefusal.TAMPERED
    assert refusal(with_keys(settings, new_key()), token) is StateRefusal.TAMPERED


def test_garbage_is_refused_as_malformed(settings: Settings) -> None:
    for token in ("", "no-dot", "a.b.c", "x" * 5000):
        assert refusal(settings, token) is StateRefusal.MALFORMED


def test_a_state_for_another_provider_or_past_its_time_is_refused(settings: Settings) -> None:
    token = issue(settings, **FIELDS)
    assert refusal(settings, token, provider="microsoft") is StateRefusal.WRONG_PROVIDER
    later = time.time() + settings.oauth_state_ttl + 1
    assert refusal(settings, token, now=later) is StateRefusal.EXPIRED


def test_rotated_keys_still_verify_states_made_before(settings: Settings) -> None:
    token = issue(settings, **FIELDS)
    old = [key.get_secret_value() for key in settings.encryption_keys]
    rotated = with_keys(settings, new_key(), *old)
    assert verify_state(rotated, token, "google").schedule_id == "s1"
    fresh = issue(rotated, **FIELDS)  # the new key signs: the old set alone refuses it
    assert refusal(settings, fresh) is StateRefusal.TAMPERED


def test_a_state_is_spent_once(settings: Settings, redis_server: str) -> None:
    client = redis.Redis.from_url(f"{redis_server}/0")
    prefix = f"test-{time.time_ns()}:"
    state = verify_state(settings, issue(settings, **FIELDS), "google")
    consume(client, prefix, state)
    with pytest.raises(StateRefused) as replay:
        consume(client, prefix, state)
    assert replay.value.reason is StateRefusal.REPLAYED
    assert "used already" in str(replay.value)
    ttl = client.ttl(f"{prefix}calsync:oauth-state:{state.nonce}")
    assert 0 < ttl <= settings.oauth_state_ttl + 60
    client.delete(f"{prefix}calsync:oauth-state:{state.nonce}")
