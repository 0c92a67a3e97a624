"""Background delivery of change and lifecycle notifications over real HTTP.

A daemon thread posts `{"value": [...]}` batches to loopback URLs only. An answer other than 2xx
within `notification_timeout` (3 s) counts as failed and is retried after the configured delays,
for at most `notification_max_age` (Graph: up to 4 hours); then it is discarded.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import ipaddress
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from .errors import GraphError
from .zones import format_utc

if TYPE_CHECKING:
    from .state import GraphState, SubscriptionRecord


def is_loopback_url(url: str) -> bool:
    """The sandbox never sends traffic anywhere but this machine."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme not in ("http", "https"):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Delivery:
    """One POST attempt (or a dropped/refused one), kept for tests and `/_sandbox/deliveries`."""

    kind: str  # "change" or "lifecycle"
    url: str
    body: dict[str, Any]
    attempt: int
    at: datetime
    status: int | None = None
    ok: bool = False
    dropped: bool = False
    error: str | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.body.get("value", []))


@dataclass(order=True)
class _Pending:
    due: float
    order: int
    kind: str = field(compare=False)
    url: str = field(compare=False)
    items: list[dict[str, Any]] = field(compare=False)
    attempt: int = field(compare=False, default=1)
    first_at: datetime | None = field(compare=False, default=None)


class Notifier:
    def __init__(self, state: GraphState) -> None:
        self._state = state
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._order = itertools.count()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.deliveries: list[Delivery] = []

    # ---- producing -----------------------------------------------------------------------------

    def event_changed(self, user_id: str, change_type: str, event_id: str) -> None:
        """Queue a change notification for every subscription on this mailbox that wants it."""
        for sub in self._state.active_subscriptions(user_id):
            if change_type in sub.change_types and not sub.paused:
                self._enqueue(
                    "change", sub.notification_url, [self._change_item(sub, change_type, event_id)]
                )

    def lifecycle(self, sub: SubscriptionRecord, event: str) -> None:
        assert sub.lifecycle_url is not None
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": format_utc(sub.expiration),
            "tenantId": self._state.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        self._enqueue("lifecycle", sub.lifecycle_url, [item])

    def _change_item(
        self, sub: SubscriptionRecord, change_type: str, event_id: str
    ) -> dict[str, Any]:
        tenant = self._state.tenant_id
        data: dict[str, Any] = {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": f"Users/{sub.user_id}@{tenant}/Events/{event_id}",
            "id": event_id,
        }
        with contextlib.suppress(GraphError):  # deleted: only the id is known
            data["@odata.etag"] = self._state.get_instance(sub.user_id, event_id).etag
        client_state = sub.client_state
        if self._state.faults.should_corrupt_client_state():
            client_state = "forged-" + base64.urlsafe_b64encode(os.urandom(6)).decode()
        return {
            "id": base64.urlsafe_b64encode(os.urandom(9)).decode(),
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": format_utc(sub.expiration),
            "clientState": client_state,
            "changeType": change_type,
            "resource": f"users/{sub.user_id}@{tenant}/events/{event_id}",
            "tenantId": tenant,
            "resourceData": data,
        }

    def _enqueue(self, kind: str, url: str, items: list[dict[str, Any]]) -> None:
        pending = _Pending(
            time.monotonic(), next(self._order), kind, url, items, first_at=self._state.now()
        )
        with self._cond:
            heapq.heappush(self._queue, pending)
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="graph-notify", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    # ---- waiting (tests) -----------------------------------------------------------------------

    def wait_for(self, test: Callable[[Delivery], bool], timeout: float = 5.0) -> Delivery:
        """Block until a delivery matching `test` has been recorded; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((d for d in self.deliveries if test(d)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching notification delivery")
                self._cond.wait(left)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing is queued, due or in flight (scheduled retries count as queued)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(5)

    # ---- delivering ----------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self._state.settings.notification_timeout) as client:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                try:
                    self._deliver(client, batch)
                finally:
                    with self._cond:
                        self._busy -= 1
                        self._cond.notify_all()

    def _next_batch(self) -> _Pending | None:
        """Wait for the next due item and merge everything due for the same URL into it."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if self._queue and self._queue[0].due <= now:
                    head = heapq.heappop(self._queue)
                    same = [
                        p
                        for p in self._queue
                        if p.due <= now
                        and (p.kind, p.url, p.attempt) == (head.kind, head.url, head.attempt)
                    ]
                    for extra in same:
                        self._queue.remove(extra)
                        head.items.extend(extra.items)
                    heapq.heapify(self._queue)
                    self._busy += 1
                    return head
                self._cond.wait(self._queue[0].due - now if self._queue else None)

    def _deliver(self, client: httpx.Client, batch: _Pending) -> None:
        body = {"value": batch.items}
        record = Delivery(batch.kind, batch.url, body, batch.attempt, self._state.now())
        if not is_loopback_url(batch.url):
            record.error = "refused: the sandbox only delivers to loopback addresses"
        elif self._state.faults.should_drop_notification():
            record.dropped = True
        else:
            try:
                answer = client.post(batch.url, json=body)
                record.status, record.ok = answer.status_code, 200 <= answer.status_code < 300
            except httpx.HTTPError as exc:
                record.error = f"{type(exc).__name__}: {exc}"
            if not record.ok:
                self._schedule_retry(batch)
        with self._cond:
            self.deliveries.append(record)
            self._cond.notify_all()

    def _schedule_retry(self, batch: _Pending) -> None:
        settings = self._state.settings
        delays = settings.notification_retry_delays
        too_old = batch.first_at is not None and (
            self._state.now() - batch.first_at > settings.notification_max_age
        )
        if batch.attempt > len(delays) or too_old:
            return  # Graph discards a notification it could not deliver in time
        retry = _Pending(
            time.monotonic() + delays[batch.attempt - 1],
            next(self._order),
            batch.kind,
            batch.url,
            batch.items,
            batch.attempt + 1,
            batch.first_at,
        )
        with self._cond:
            heapq.heappush(self._queue, retry)
            self._cond.notify_all()
