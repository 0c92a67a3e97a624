"""Push channels of the calendar store: a signed POST to each watcher after every change.

Signed like a webhook should be: HMAC-SHA256 of the body with the channel's secret, in
`X-Store-Signature`; `X-Store-Message` increases per channel, so a receiver can de-duplicate.
Delivered from one background thread, in order, so API answers are not delayed.
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
    _queue: queue.Queue[tuple[Channel, int, str, str | None] | None] = field(
        default_factory=queue.Queue
    )
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle_markers: list[threading.Event] = field(default_factory=list)

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
                self._queue.put((channel, channel.messages, event_id, version))
            if targets and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-push", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Return once every notification queued so far was sent (and answered, or given up
        on); `TimeoutError` if that takes longer than `timeout`."""
        if self._thread is None:
            return
        done = threading.Event()
        with self._lock:
            self._idle_markers.append(done)
            self._queue.put(None)  # a marker: everything before it has been sent
        if not done.wait(timeout):
            raise TimeoutError(f"store notifications still being sent after {timeout} s")

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    if self._idle_markers:
                        self._idle_markers.pop(0).set()
                    continue
                self._send(client, *item)

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
