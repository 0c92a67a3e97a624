"""A calendar in calsync's own HTTP calendar store (`sandbox.store`), the `local` provider.

It exists so the whole pipeline (webhook, inbox, broker, worker, planner, writes) can run and
be tested, benchmarked and demonstrated end to end without a third party. It maps HTTP answers
to the provider errors exactly as the real providers do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

import httpx

from providers.base import BeforeRequest, ChangePage
from providers.errors import (
    NotFound,
    TransientError,
)
from providers.local.http import error_for
from sync.codec import event_to_dict, remote_from_dict
from sync.event import CanonicalEvent, as_instant
from sync.snapshot import RemoteEvent


class LocalCalendar:
    """One calendar of the store at `base_url`, behind the `CalendarProvider` interface."""

    write_concurrency = 1  # one write at a time

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

    def delete(self, event_id: str, if_match: str | None) -> None:
        headers = {} if if_match is None else {"If-Match": if_match}
        try:
            self._send("DELETE", f"/events/{quote(event_id, safe='')}", headers=headers)
        except NotFound:
            return  # already gone: the delete is done


def _overlaps(remote: RemoteEvent, start: datetime, end: datetime) -> bool:
    assert remote.event is not None
    return as_instant(remote.event.start) < end and as_instant(remote.event.end) > start
