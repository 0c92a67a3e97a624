"""Hypothesis against the webhook receivers (`/webhooks/*`), which take whatever arrives: JSON
of any shape, nesting deep enough to break a recursive reader, text near and over the body
limit, bytes that are no text, any content type, and notices naming real channels with forged
proofs. Each answer is a 4xx or a 2xx, never a 5xx, and nothing reaches the inbox, the
tenants or the broker.

`CALSYNC_FUZZ_EXAMPLES` scales the run like the schema's (`make fuzz`): eight times as many
deliveries; `CALSYNC_FUZZ_MIN_REQUESTS` is what it must at least send."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from conftest import Queued, TenantKey, derive
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from api.app import create_app
from config import Settings
from models import (
    ChannelStatus,
    Connection,
    ExternalCalendar,
    InboxItem,
    Provider,
    PushChannel,
    Tenant,
)
from models.db import session_scope
from models.types import utcnow
from tasks.context import WorkerContext

EXAMPLES = int(os.environ.get("CALSYNC_FUZZ_EXAMPLES", "25")) * 8
MIN_REQUESTS = int(os.environ.get("CALSYNC_FUZZ_MIN_REQUESTS", "0"))
UNSTORABLE = ["sub\x00id", "\ud800"]  # ids no database row can have
CONTENT_TYPES = ["application/json", "application/json; charset=utf-16", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/octet-stream", "application/jwt", "", "*/*; q=0.1"]  # fmt: skip


@dataclass(frozen=True)
class Channels:
    """Real channels whose ids the forged notices name (their secrets are never sent)."""

    google: str
    microsoft: str
    local: str


def _channel(engine: Engine, tenant: TenantKey, provider: Provider) -> str:
    with session_scope(engine) as db:
        connection = Connection(tenant_id=tenant.tenant_id, provider=provider,
                                schedule_id=f"sched-{provider}", sync_config={})  # fmt: skip
        db.add(connection)
        db.flush()
        calendar = ExternalCalendar(connection_id=connection.id, remote_id=uuid.uuid4().hex,
                                    import_enabled=True, export_target=True)  # fmt: skip
        db.add(calendar)
        db.flush()
        channel_id = f"{provider}-{uuid.uuid4().hex}"
        db.add(PushChannel(calendar_id=calendar.id, provider=provider, channel_id=channel_id,
                           resource_id="res", secret=uuid.uuid4().hex,
                           status=ChannelStatus.ACTIVE,
                           expires_at=utcnow() + timedelta(days=2)))  # fmt: skip
        return channel_id


@pytest.fixture
def channels(engine: Engine, tenant: TenantKey) -> Channels:
    return Channels(*(_channel(engine, tenant, p)
                      for p in (Provider.GOOGLE, Provider.MICROSOFT, Provider.LOCAL)))  # fmt: skip


@pytest.fixture
def wix_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def receiving(api_settings: Settings, context: WorkerContext, wix_key: str
              ) -> Iterator[TestClient]:  # fmt: skip
    app = create_app(derive(api_settings, wix_public_key=wix_key, api_rate_limit_per_second=0))
    app.state.gate = context.gate
    with TestClient(app) as client:
        yield client


# -- bodies ----------------------------------------------------------------------------------

lone_surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
    | lone_surrogates,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=40,
)  # fmt: skip
deep_nesting = st.builds(lambda opener, depth: (opener * depth).encode(),
                         st.sampled_from(["[", '{"a":', '{"value":[']),
                         st.integers(1_000, 150_000))  # fmt: skip
long_text = st.builds(lambda char, size: (char * size).encode("utf-8", "surrogatepass"),
                      st.characters(), st.integers(10_000, 300_000))  # fmt: skip
over_limit = st.integers(1_048_577, 1_100_000).map(lambda size: b"x" * size)
raw_bodies = (
    json_values.map(lambda value: json.dumps(value).encode())
    | deep_nesting
    | long_text
    | over_limit
    | st.binary(max_size=2_000)
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_like(parts: tuple[Any, Any, bytes]) -> bytes:
    header, claims, signature = parts
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                     _b64(signature)]).encode()  # fmt: skip


wix_bodies = st.tuples(
    st.fixed_dictionaries({"alg": st.sampled_from(["RS256", "HS256", "none", "ES256"])},
                          optional={"kid": st.text(max_size=8), "typ": st.just("JWT")}),
    st.fixed_dictionaries({"data": json_values.map(json.dumps)},
                          optional={"iat": st.integers(), "exp": st.integers()}),
    st.binary(max_size=256),
).map(_jwt_like)  # fmt: skip


def _graph_items(channel: str) -> st.SearchStrategy[bytes]:
    item = st.fixed_dictionaries(
        {"subscriptionId": st.sampled_from([channel, "not-ours", *UNSTORABLE])
         | st.text(max_size=20),
         "clientState": st.none() | st.text(max_size=40) | json_values},
        optional={"changeType": st.sampled_from(["created", "updated", "deleted"]),
                  "resource": st.text(max_size=60), "lifecycleEvent": st.text(max_size=30),
                  "resourceData": json_values},
    )  # fmt: skip
    return st.lists(item | json_values, max_size=4).map(
        lambda items: json.dumps({"value": items}).encode()
    )


def _store_notice() -> st.SearchStrategy[bytes]:
    notice = st.fixed_dictionaries(
        {"message": st.integers() | json_values},
        optional={"event": json_values, "version": json_values},
    )
    return notice.map(lambda body: json.dumps(body).encode())


@st.composite
def deliveries(draw: st.DrawFn, channels: Channels) -> tuple[str, dict[str, Any], bytes]:
    """A path, headers and body: a forgery aimed at one receiver, or plain garbage."""
    forged_proof = draw(st.text(max_size=40)).encode("utf-8", "surrogatepass")
    target = draw(st.sampled_from(["google", "microsoft", "lifecycle", "local", "wix", "other"]))
    headers = {"content-type": draw(st.sampled_from(CONTENT_TYPES))}
    garbage = draw(st.booleans())
    if target == "google":
        path = "/webhooks/google"
        headers |= {"x-goog-channel-id": draw(st.sampled_from([channels.google, "nope", "n\x00"])),
                    "x-goog-channel-token": forged_proof,
                    "x-goog-resource-state": draw(st.sampled_from(["sync", "exists", "x"])),
                    "x-goog-message-number": str(draw(st.integers())),
                    "x-goog-resource-id": "res"}  # fmt: skip
        body = draw(raw_bodies) if garbage else b""
    elif target in ("microsoft", "lifecycle"):
        path = "/webhooks/microsoft" + ("/lifecycle" if target == "lifecycle" else "")
        body = draw(raw_bodies if garbage else _graph_items(channels.microsoft))
    elif target == "local":
        path = "/webhooks/local"
        headers |= {"x-store-channel": draw(st.sampled_from([channels.local, "nope", "n\x00"])),
                    "x-store-signature": forged_proof}  # fmt: skip
        body = draw(raw_bodies if garbage else _store_notice())
    elif target == "wix":
        path, body = "/webhooks/wix", draw(raw_bodies if garbage else wix_bodies)
    else:
        path = "/webhooks/" + draw(st.sampled_from(["apple", "caldav", "nothing", "google/x/y"]))
        body = draw(raw_bodies)
    return path, headers, body


def _recorded(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as db:
        return (db.scalar(select(func.count()).select_from(InboxItem)) or 0,
                db.scalar(select(func.count()).select_from(Tenant)) or 0)  # fmt: skip


def test_forged_and_malformed_deliveries_change_nothing(
    receiving: TestClient, channels: Channels, engine: Engine, queued: Queued
) -> None:
    before = _recorded(engine)
    answers: Counter[int] = Counter()
    started = time.monotonic()

    @given(delivery=deliveries(channels))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def refused_without_trace(delivery: tuple[str, dict[str, Any], bytes]) -> None:
        path, headers, body = delivery
        answer = receiving.post(path, headers=headers, content=body)
        answers[answer.status_code] += 1
        assert answer.status_code < 500, (path, answer.status_code, answer.text[:200])
        assert _recorded(engine) == before, (path, answer.status_code, answer.text[:200])

    refused_without_trace()
    total = sum(answers.values())
    print(f"\nwebhooks: {total} deliveries in {time.monotonic() - started:.0f} s; "
          f"by status {dict(sorted(answers.items()))}")  # fmt: skip
    assert queued("sync") == []
    assert total >= max(EXAMPLES // 2, MIN_REQUESTS // 10)
