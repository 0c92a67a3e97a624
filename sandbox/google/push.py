"""Delivering push notifications over real HTTP.

Each message is a bodiless POST with the `X-Goog-*` headers. Deliveries run on worker threads, so
the API call that caused them is never delayed; messages of one channel go out in order (the sync
message first). 500/502/503/504 and connection failures are retried with exponential backoff; any
other non-success status is a failed message, as Google counts it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from .channels import Channel, is_loopback_url
from .datetimes import http_date

SUCCESS = frozenset({102, 200, 201, 202, 204})
RETRIED = frozenset({500, 502, 503, 504})
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


@dataclass(frozen=True)
class PushSettings:
    max_attempts: int = 5
    backoff_seconds: float = 0.2  # first retry after about this long, doubling each time
    timeout_seconds: float = 5.0
    workers: int = 8


@dataclass(frozen=True)
class Message:
    channel_id: str
    address: str
    number: int
    state: str  # "sync" or "exists"
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    """What became of one message: delivered, failed, dropped (fault), skipped (channel no longer
    live when its turn came) or refused (not a loopback address)."""

    channel_id: str
    number: int
    state: str
    outcome: str
    status: int | None = None
    attempts: int = 0
    error: str | None = None


def build_message(channel: Channel, number: int, state: str) -> Message:
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Channel-Expiration": http_date(channel.expiration_ms),
        "Content-Type": "application/json; utf-8",
        "User-Agent": USER_AGENT,
    }
    if channel.token is not None:
        headers["X-Goog-Channel-Token"] = channel.token
    return Message(channel.id, channel.address, number, state, headers)


class PushDispatcher:
    def __init__(
        self, still_live: Callable[[str], bool], settings: Callable[[], PushSettings]
    ) -> None:
        self._still_live = still_live
        self._settings = settings
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Message]] = {}
        self._pending = 0
        self._log: list[Delivery] = []
        self._pool = ThreadPoolExecutor(settings().workers, thread_name_prefix="google-push")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._closed = False

    def send(self, message: Message) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending += 1
            queue = self._queues.get(message.channel_id)
            if queue is not None:  # a worker is already draining this channel
                queue.append(message)
                return
            self._queues[message.channel_id] = deque([message])
        self._pool.submit(self._drain, message.channel_id)

    def record_dropped(self, message: Message) -> None:
        with self._cond:
            self._log.append(_record(message, "dropped"))

    def deliveries(self) -> list[Delivery]:
        with self._cond:
            return list(self._log)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued message has been delivered or given up on."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def clear_log(self) -> None:
        with self._cond:
            self._log.clear()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queues.clear()
            self._pending = 0
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients:
            client.close()

    def _drain(self, channel_id: str) -> None:
        while True:
            with self._cond:
                queue = self._queues.get(channel_id)
                if not queue:
                    self._queues.pop(channel_id, None)
                    return
                message = queue[0]
            delivery = self._deliver(message)
            with self._cond:
                if queue:
                    queue.popleft()
                self._log.append(delivery)
                self._pending = max(0, self._pending - 1)
                self._cond.notify_all()

    def _deliver(self, message: Message) -> Delivery:
        settings = self._settings()
        if not is_loopback_url(message.address):
            return _record(message, "refused")
        status: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, settings.max_attempts + 1):
            if not self._still_live(message.channel_id):
                return _record(message, "skipped", status, attempt - 1, error)
            status, error = self._post(message, settings)
            if status in SUCCESS:
                return _record(message, "delivered", status, attempt)
            if status is not None and status not in RETRIED:
                break  # any other status is a failed message, not retried
            if attempt < settings.max_attempts:
                jitter = random.uniform(0.5, 1.0)
                time.sleep(settings.backoff_seconds * 2 ** (attempt - 1) * jitter)
        return _record(message, "failed", status, attempt, error)

    def _post(self, message: Message, settings: PushSettings) -> tuple[int | None, str | None]:
        try:
            response = self._client(settings).post(
                message.address, headers=message.headers, content=b""
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    def _client(self, settings: PushSettings) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            # trust_env=False: never route a notification through a proxy from the environment.
            client = httpx.Client(timeout=settings.timeout_seconds, trust_env=False)
            self._local.client = client
            with self._cond:
                self._clients.append(client)
        return client


def _record(
    message: Message,
    outcome: str,
    status: int | None = None,
    attempts: int = 0,
    error: str | None = None,
) -> Delivery:
    return Delivery(
        message.channel_id, message.number, message.state, outcome, status, attempts, error
    )
