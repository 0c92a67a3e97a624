"""The `local` provider: a calendar in calsync's own HTTP calendar store (`sandbox.store`).

It exists so the whole pipeline (webhook, inbox, broker, worker, planner, writes) can run and
be tested, benchmarked and demonstrated end to end without a third party. It maps HTTP answers
to the provider errors exactly as the real providers do, and verifies its push notifications
(HMAC-SHA256 over the body with the channel secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

from providers.base import (
    BeforeRequest,
    ChangePage,
    CursorExpired,
    NotFound,
    PermanentError,
    PermanentReason,
    PreconditionFailed,
    ProviderError,
    RateLimited,
    TransientError,
)
from sync.codec import event_to_dict, remote_from_dict
from sync.event import CanonicalEvent, as_instant
from sync.snapshot import RemoteEvent


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    reference = now or datetime.now(moment.tzinfo)
    return max(0.0, (moment - reference).total_seconds())


def error_for(response: httpx.Response) -> ProviderError:
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 429:
        return RateLimited("rate limited", retry_after)
    if status >= 500:
        return TransientError(f"store answered {status}", retry_after)
    if status == 412:
        return PreconditionFailed(response.text)
    if status == 410:
        return CursorExpired(response.text)
    if status == 404:
        return NotFound(response.text)
    if status == 401:
        return PermanentError(PermanentReason.TOKEN_REVOKED, response.text)
    if status == 403:
        return PermanentError(PermanentReason.FORBIDDEN, response.text)
    return PermanentError(PermanentReason.INVALID_EVENT, f"{status}: {response.text}")


class LocalCalendar:
    """One calendar of the store at `base_url`, behind the `CalendarProvider` interface."""

    def __init__(
        self,
        base_url: str,
        calendar: str,
        http: httpx.Client,
        *,
        read_only: bool = False,
        before_request: BeforeRequest | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/calendars/{quote(calendar, safe='')}"
        self.http = http
        self._read_only = read_only
        self.before_request = before_request or (lambda: None)
        self.calls = 0

    @property
    def read_only(self) -> bool:
        return self._read_only

    def _send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        self.before_request()
        self.calls += 1
        try:
            response = self.http.request(method, f"{self.base}{path}", **kwargs)  # type: ignore[arg-type]
        except httpx.TimeoutException as error:
            raise TransientError(f"timeout: {error}") from None
        except httpx.TransportError as error:
            raise TransientError(f"network: {error}") from None
        if response.status_code >= 400:
            raise error_for(response)
        return response

    def list_changes(self, cursor: str | None) -> ChangePage:
        params = {} if cursor is None else {"cursor": cursor}
        body = self._send("GET", "/changes", params=params).json()
        changes = tuple(remote_from_dict(item) for item in body["changes"])
        return ChangePage(changes, body["nextCursor"], complete=bool(body["complete"]))

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        page = self.list_changes(None)
        return [r for r in page.changes if r.event is not None and _overlaps(r, start, end)]

    def get(self, event_id: str) -> RemoteEvent:
        return remote_from_dict(self._send("GET", f"/events/{quote(event_id, safe='')}").json())

    def create(
        self, event: CanonicalEvent, idempotency_key: str, *, marker: str, tag: str | None = None
    ) -> RemoteEvent:
        body = {"event": event_to_dict(event), "idempotencyKey": idempotency_key,
                "marker": marker, "tag": tag}  # fmt: skip
        return remote_from_dict(self._send("POST", "/events", json=body).json())

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        headers = {} if if_match is None else {"If-Match": if_match}
        response = self._send(
            "PUT", f"/events/{quote(event_id, safe='')}",
            json={"event": event_to_dict(event)}, headers=headers,
        )  # fmt: skip
        return remote_from_dict(response.json())

    def watch(self, channel_id: str, address: str, secret: str) -> None:
        """Ask the store to push a signed notification to `address` after every change."""
        store = self.base.split("/calendars/", 1)[0]
        calendar = self.base.rsplit("/", 1)[1]
        response = self.http.post(f"{store}/_store/channels", json={
            "id": channel_id, "calendar": calendar, "address": address, "secret": secret,
        })  # fmt: skip
        if response.status_code >= 400:
            raise error_for(response)

    def stop_watch(self, channel_id: str) -> None:
        store = self.base.split("/calendars/", 1)[0]
        response = self.http.delete(f"{store}/_store/channels/{quote(channel_id, safe='')}")
        if response.status_code >= 400 and response.status_code != 404:
            raise error_for(response)

    def delete(self, event_id: str, if_match: str | None) -> None:
        headers = {} if if_match is None else {"If-Match": if_match}
        try:
            self._send("DELETE", f"/events/{quote(event_id, safe='')}", headers=headers)
        except NotFound:
            return  # already gone: the delete is done


def _overlaps(remote: RemoteEvent, start: datetime, end: datetime) -> bool:
    assert remote.event is not None
    return as_instant(remote.event.start) < end and as_instant(remote.event.end) > start


@dataclass(frozen=True)
class Notification:
    channel_id: str
    calendar: str
    message: int
    event_id: str | None = None
    version: str | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.channel_id}:{self.message}"


class ForgedNotification(Exception):
    pass


def verify_notification(
    headers: Mapping[str, str], body: bytes, secret_for: Callable[[str], str | None]
) -> Notification:
    """Check the signature with the channel's secret; raises ForgedNotification otherwise."""
    channel_id = headers.get("x-store-channel", "")
    secret = secret_for(channel_id) if channel_id else None
    if secret is None:
        raise ForgedNotification("unknown channel")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("x-store-signature", "")):
        raise ForgedNotification("bad signature")
    payload = json.loads(body)
    return Notification(
        channel_id, str(payload["calendar"]), int(payload["message"]),
        payload.get("event"), payload.get("version"),
    )  # fmt: skip
