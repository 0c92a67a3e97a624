"""Push channels of the calendar store: a signed POST to each watcher after every change.

Signed like a webhook should be: HMAC-SHA256 of the body with the channel's secret, in
`X-Store-Signature`; `X-Store-Message` increases per channel, so a receiver can de-duplicate.
Delivered from a few background threads, so API answers are not delayed and one slow answer
does not hold up the rest; like a provider's, deliveries may arrive out of order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx


@dataclass
class Channel:
    channel_id: str
    calendar: str
    address: str
    secret: str
    messages: int = 0


@dataclass
class Pusher:
    channels: dict[str, Channel] = field(default_factory=dict)
    drop_next: int = 0
    delivered: list[tuple[str, int, int]] = field(default_factory=list)  # channel, message, status
    senders: int = 4
    _queue: queue.Queue[tuple[Channel, int, str, str | None]] = field(default_factory=queue.Queue)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: int = 0  # queued or being sent

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._lock)

    def watch(self, channel: Channel) -> None:
        if urlsplit(channel.address).hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError("push addresses must be on loopback")
        with self._lock:
            self.channels[channel.channel_id] = channel

    def stop(self, channel_id: str) -> None:
        with self._lock:
            self.channels.pop(channel_id, None)

    def notify(self, calendar: str, event_id: str, version: str | None) -> None:
        with self._lock:
            targets = [c for c in self.channels.values() if c.calendar == calendar]
            for channel in targets:
                channel.messages += 1
                if self.drop_next > 0:
                    self.drop_next -= 1
                    continue
                self._pending += 1
                self._queue.put((channel, channel.messages, event_id, version))
            while targets and len(self._threads) < self.senders:
                thread = threading.Thread(target=self._run, name="store-push", daemon=True)
                thread.start()
                self._threads.append(thread)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Return once every notification queued so far was sent (and answered, or given up
        on); `TimeoutError` if that takes longer than `timeout`."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"store notifications still being sent after {timeout} s")

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while True:
                item = self._queue.get()
                try:
                    self._send(client, *item)
                finally:
                    with self._idle:
                        self._pending -= 1
                        if self._pending == 0:
                            self._idle.notify_all()

    def _send(
        self, client: httpx.Client, channel: Channel, message: int, event_id: str,
        version: str | None,
    ) -> None:  # fmt: skip
        body = json.dumps({"calendar": channel.calendar, "message": message,
                           "event": event_id, "version": version}).encode()  # fmt: skip
        signature = hmac.new(channel.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Store-Channel": channel.channel_id,
            "X-Store-Message": str(message),
            "X-Store-Signature": signature,
        }
        for _attempt in range(3):  # a few quick retries, like a provider would
            try:
                status = client.post(channel.address, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            if 0 < status < 500:  # delivered, or refused for good (a 4xx is not retried)
                break
        with self._lock:
            self.delivered.append((channel.channel_id, message, status))
