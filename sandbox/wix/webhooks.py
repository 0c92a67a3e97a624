"""Signed webhook deliveries, as Wix sends them.

Body: an RS256 JWT whose claims are `{data: "<JSON string>", iat, exp}`; `data` parses to
`{eventType, instanceId, data: "<JSON string>", identity: "<JSON string>"}`. Deliveries go out from
one background thread so API calls never wait for the receiver. A failed attempt (not 2xx,
slower than the timeout, or unreachable) is retried on Wix's documented schedule, compressed by
`time_scale`. Every delivery is recorded so tests can inspect it, replay it byte for byte, or
send broken variants.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from sandbox.wix.model import App
from sandbox.wix.signing import Forgery, claims, forge
from sandbox.wix.zoned import format_timestamp

# Wix's documented resend policy: up to 12 more attempts after these delays (seconds).
DOCUMENTED_RETRY_DELAYS: tuple[float, ...] = (
    60,
    600,
    3600,
    7200,
    7200,
    7200,
    14400,
    14400,
    14400,
    28800,
    28800,
    43200,
)
EVENT_FQDN = "wix.calendar.v3.event"
_PAYLOAD_MEMBER = {
    "created": ("createdEvent", "entity"),
    "updated": ("updatedEvent", "currentEntity"),
    "cancelled": ("actionEvent", "body"),
}


@dataclass
class DeliveryOptions:
    """`time_scale` compresses the retry schedule: 0.001 turns 1 min into 60 ms, 12 h into 43 s."""

    time_scale: float = 0.001
    timeout: float = 1.25  # Wix wants a 200 within 1250 ms
    token_lifetime: timedelta = timedelta(minutes=10)
    retry_delays: tuple[float, ...] = DOCUMENTED_RETRY_DELAYS

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait before attempt number `attempt + 1`, or None when out of retries."""
        if attempt > len(self.retry_delays):
            return None
        return self.retry_delays[attempt - 1] * self.time_scale


@dataclass
class Attempt:
    at: datetime
    body: str = field(repr=False)
    status: int | None = None
    error: str | None = None


@dataclass
class Delivery:
    """One webhook: what was sent, to where, how each attempt went."""

    id: str
    app: App = field(repr=False)
    instance_id: str
    event_type: str
    data: dict[str, Any]
    identity: dict[str, Any]
    kind: str = "genuine"  # or "duplicate", "replay", or a signing.Forgery
    state: str = "pending"  # pending | delivered | failed | dropped | no_address
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def body(self) -> str:
        """The JWT most recently sent (each retry is signed afresh, with new iat/exp)."""
        return self.attempts[-1].body if self.attempts else ""

    def envelope_json(self) -> str:
        return json.dumps(
            {
                "eventType": self.event_type,
                "instanceId": self.instance_id,
                "data": json.dumps(self.data, separators=(",", ":")),
                "identity": json.dumps(self.identity, separators=(",", ":")),
            },
            separators=(",", ":"),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app.app_id,
            "instanceId": self.instance_id,
            "eventType": self.event_type,
            "kind": self.kind,
            "state": self.state,
            "data": self.data,
            "attempts": [
                {"at": format_timestamp(a.at), "status": a.status, "error": a.error}
                for a in self.attempts
            ],
        }


def calendar_event_data(
    slug: str, entity: dict[str, Any], sequence: int, now: datetime
) -> dict[str, Any]:
    """The inner `data` of an Event Created/Updated/Cancelled webhook."""
    member, key = _PAYLOAD_MEMBER[slug]
    payload: dict[str, Any] = {key: {"event": entity} if slug == "cancelled" else entity}
    return {
        "id": str(uuid.uuid4()),
        "entityFqdn": EVENT_FQDN,
        "slug": slug,
        "entityId": entity["id"],
        "eventTime": format_timestamp(now),
        "triggeredByAnonymizeRequest": False,
        "entityEventSequence": str(sequence),
        member: payload,
    }


def calendar_event_type(slug: str) -> str:
    return f"wix.calendar.v3.event_{slug}"


class WebhookDispatcher:
    def __init__(self, clock: Callable[[], datetime], options: DeliveryOptions | None = None):
        self.options = options or DeliveryOptions()
        self.deliveries: list[Delivery] = []
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._busy = 0
        self._paused = False
        self._drop = 0
        self._duplicate = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=self.options.timeout, trust_env=False)

    # producing

    def publish(
        self,
        app: App,
        instance_id: str,
        event_type: str,
        data: dict[str, Any],
        identity: dict[str, Any],
    ) -> Delivery:
        """Record a webhook and queue it for the background sender (never blocks)."""
        delivery = self._record(app, instance_id, event_type, data, identity, "genuine")
        with self._cond:
            if self._drop:
                self._drop -= 1
                delivery.state = "dropped"
                return delivery
            self._enqueue(delivery, 0.0)
            if self._duplicate:
                self._duplicate -= 1
                copy = self._record(app, instance_id, event_type, data, identity, "duplicate")
                self._enqueue(copy, 0.0)
        self._ensure_thread()
        return delivery

    def replay(self, delivery_id: str) -> Delivery:
        """Send a recorded delivery's last body again, byte for byte, right now."""
        original = self.get(delivery_id)
        replay = self._record(
            original.app,
            original.instance_id,
            original.event_type,
            original.data,
            original.identity,
            "replay",
        )
        self._post(replay, original.body)
        return replay

    def forge(self, kind: Forgery, delivery_id: str | None = None) -> Delivery:
        """Send, right now, a copy of a delivery (default: the latest) that fails verification.

        The copy gets a new webhook `id` so a receiver can't be rejecting it as a duplicate.
        """
        original = self.get(delivery_id) if delivery_id else self.latest()
        data = dict(original.data, id=str(uuid.uuid4())) if "id" in original.data else original.data
        forged = self._record(
            original.app, original.instance_id, original.event_type, data, original.identity, kind
        )
        token = forge(
            kind,
            original.app.key,
            forged.envelope_json(),
            self._clock(),
            self.options.token_lifetime,
        )
        self._post(forged, token)
        return forged

    # controls

    def drop_next(self, count: int = 1) -> None:
        """The next `count` webhooks are recorded as dropped and never sent (a lost webhook)."""
        with self._cond:
            self._drop += count

    def duplicate_next(self, count: int = 1) -> None:
        """The next `count` webhooks are each sent twice (same inner `id`, as Wix may)."""
        with self._cond:
            self._duplicate += count

    def pause(self) -> None:
        """Hold deliveries in the queue until `resume`."""
        with self._cond:
            self._paused = True

    def resume(self, reverse: bool = False) -> None:
        """Release held deliveries; `reverse=True` sends them newest first (out of order)."""
        with self._cond:
            if reverse:
                held = sorted(self._queue, reverse=True)
                self._queue = [(0.0, next(self._order), item[2]) for item in held]
                heapq.heapify(self._queue)
            self._paused = False
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is queued or being sent; False on timeout (e.g. while paused)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    # reading

    def get(self, delivery_id: str) -> Delivery:
        for delivery in self.deliveries:
            if delivery.id == delivery_id:
                return delivery
        raise KeyError(delivery_id)

    def latest(self) -> Delivery:
        genuine = [d for d in self.deliveries if d.kind == "genuine"]
        if not genuine:
            raise LookupError("no delivery has been made yet")
        return genuine[-1]

    # sending

    def _record(
        self,
        app: App,
        instance_id: str,
        event_type: str,
        data: dict[str, Any],
        identity: dict[str, Any],
        kind: str,
    ) -> Delivery:
        with self._cond:
            delivery = Delivery(
                id=f"d{next(self._ids)}",
                app=app,
                instance_id=instance_id,
                event_type=event_type,
                data=data,
                identity=identity,
                kind=kind,
            )
            self.deliveries.append(delivery)
        return delivery

    def _enqueue(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), delivery))
        self._cond.notify_all()

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wix-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                delivery = self._next_due()
                if delivery is None:
                    return
                self._busy += 1
            try:
                self._attempt(delivery)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _next_due(self) -> Delivery | None:
        """Block until a delivery is due (called with the condition held); None when closed."""
        while not self._closed:
            if self._queue and not self._paused:
                wait = self._queue[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._queue)[2]
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _attempt(self, delivery: Delivery) -> None:
        token = delivery.app.key.sign(
            claims(delivery.envelope_json(), self._clock(), self.options.token_lifetime)
        )
        if not self._post(delivery, token):
            delay = self.options.delay(len(delivery.attempts))
            with self._cond:
                if delay is None:
                    delivery.state = "failed"
                else:
                    delivery.state = "pending"
                    self._enqueue(delivery, delay)

    def _post(self, delivery: Delivery, token: str) -> bool:
        """One POST of `token`; records the attempt and returns whether it succeeded."""
        url = delivery.app.webhook_url
        if not url:
            delivery.state = "no_address"
            return True  # nothing to retry: the app never configured an address
        attempt = Attempt(at=self._clock(), body=token)
        delivery.attempts.append(attempt)
        try:
            response = self._client.post(url, content=token, headers={"Content-Type": "text/plain"})
            attempt.status = response.status_code
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        ok = attempt.status is not None and 200 <= attempt.status < 300
        delivery.state = "delivered" if ok else "failed"
        return ok
