"""A calendar in calsync's own HTTP calendar store (`sandbox.store`), the `local` provider.

It exists so the whole pipeline (webhook, inbox, broker, worker, planner, writes) can run and
be tested, benchmarked and demonstrated end to end without a third party. It maps HTTP answers
to the provider errors exactly as the real providers do.

The store has no notion of a window, so the calendar applies the sync window as the others do:
someone else's event is listed while it overlaps the window, and is a tombstone in the changes
once it lies outside; calsync's own events are listed however far ahead they are, until they
end before the window. A calendar without a window (one standing in for Wix) lists everything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from providers.base import (
    BeforeRequest,
    ChangePage,
    EventChange,
    EventRemoval,
    NewEvent,
    SyncWindow,
    Write,
    WriteOutcome,
)
from providers.errors import NotFound, TransientError, error_for_status
from providers.local.http import LADDER, error_for
from sync.codec import event_to_dict, remote_from_dict
from sync.event import CanonicalEvent, as_instant
from sync.snapshot import RemoteEvent


class LocalCalendar:
    """One calendar of the store at `base_url`, behind the `CalendarProvider` interface; it
    takes batches of writes (`BatchWriter`), as Google, Graph and Wix do."""

    write_concurrency = 1  # one write at a time
    batch_size = 50

    def __init__(
        self,
        base_url: str,
        calendar: str,
        http: httpx.Client,
        *,
        read_only: bool = False,
        before_request: BeforeRequest | None = None,
        window: SyncWindow | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/calendars/{quote(calendar, safe='')}"
        self.window = window
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
        complete = bool(body["complete"])
        changes = [self._windowed(remote_from_dict(item)) for item in body["changes"]]
        if complete:
            changes = [change for change in changes if not change.deleted]
        return ChangePage(tuple(changes), body["nextCursor"], complete=complete)

    def _windowed(self, remote: RemoteEvent) -> RemoteEvent:
        """The event as a listing over the window shows it: gone when it lies outside."""
        event, window = remote.event, self.window
        if event is None or window is None:
            return remote
        end = as_instant(event.end)
        if remote.marker is not None:
            inside = end > window.start
        else:
            inside = as_instant(event.start) < window.end and end > window.start
        return remote if inside else RemoteEvent.gone(remote.id)

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

    def write_many(self, writes: Sequence[Write]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        for offset in range(0, len(writes), self.batch_size):
            chunk = writes[offset : offset + self.batch_size]
            body = {"writes": [_write_body(write) for write in chunk]}
            answers = self._send("POST", "/batch", json=body).json()["results"]
            outcomes += [_outcome(w, a) for w, a in zip(chunk, answers, strict=True)]
        return outcomes


def _write_body(write: Write) -> dict[str, object]:
    if isinstance(write, NewEvent):
        return {"kind": "create", "event": event_to_dict(write.event), "marker": write.marker,
                "idempotencyKey": write.idempotency_key, "tag": write.tag}  # fmt: skip
    if isinstance(write, EventChange):
        return {"kind": "update", "id": write.event_id, "event": event_to_dict(write.event),
                "ifMatch": write.if_match}  # fmt: skip
    return {"kind": "delete", "id": write.event_id, "ifMatch": write.if_match}


def _outcome(write: Write, answer: dict[str, Any]) -> WriteOutcome:
    status = int(answer["status"])
    if status < 300:
        return remote_from_dict(answer["event"]) if "event" in answer else None
    message, retry_after = str(answer["error"]["message"]), answer.get("retryAfter")
    error = error_for_status(status, message, retry_after, LADDER)
    if isinstance(write, EventRemoval) and isinstance(error, NotFound):
        return None  # already gone: the delete is done
    return error


def _overlaps(remote: RemoteEvent, start: datetime, end: datetime) -> bool:
    assert remote.event is not None
    return as_instant(remote.event.start) < end and as_instant(remote.event.end) > start
