"""A calendar system made up for a test: its server, its provider class and its registry entry,
all here. calsync learns of it from `CALSYNC_EXTRA_PROVIDERS=toy_system:ENTRY` alone, which is
the proof that a new calendar system needs no edit in tasks/ or api/.

The server keeps each account's calendars in memory: events by id with a version counter, a
change log that cursors count into, and push channels that are sent `{"channel", "token",
"seq"}` after every change. Writes name the event's id themselves (derived from calsync's
idempotency key), so a retried create finds the first.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import Settings
from providers.base import (
    AccountHooks,
    AccountSource,
    CalendarInfo,
    Capabilities,
    ChangePage,
    Channel,
    ConnectMethod,
    Credentials,
    SyncWindow,
)
from providers.errors import PermanentError, PermanentReason, error_for_status
from providers.push import Delivery, MalformedDelivery, Notice, Reply, Tally, same_secret
from providers.registry import Listing, ProviderEntry
from sync.codec import remote_from_dict, remote_to_dict
from sync.event import CanonicalEvent, as_instant
from sync.snapshot import RemoteEvent

PASSWORD = "toy-password"

# -- the system ---------------------------------------------------------------------------------


@dataclass
class ToyServer:
    calendars: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)  # (calendar, event id)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/calendars", self.list_calendars, methods=["GET"]),
            Route("/calendars/{cal}/changes", self.changes, methods=["GET"]),
            Route("/calendars/{cal}/events/{id}", self.get, methods=["GET"]),
            Route("/calendars/{cal}/events/{id}", self.put, methods=["PUT"]),
            Route("/calendars/{cal}/events/{id}", self.delete, methods=["DELETE"]),
            Route("/channels", self.watch, methods=["POST"]),
            Route("/channels/{id}", self.unwatch, methods=["DELETE"]),
        ])  # fmt: skip

    def write(self, calendar: str, remote: RemoteEvent) -> RemoteEvent:
        """Store a version of the event (a person's edit, or calsync's) and tell the channels."""
        with self.lock:
            stored = self.calendars[calendar]
            number = int(stored.get(remote.id, {}).get("version") or 0) + 1
            written = RemoteEvent(remote.id, str(number), remote.event, datetime.now(UTC),
                                  remote.marker, remote.tag)  # fmt: skip
            stored[remote.id] = remote_to_dict(written)
            self.log.append((calendar, remote.id))
            watchers = [dict(channel, id=channel_id) for channel_id, channel
                        in self.channels.items() if channel["calendar"] == calendar]  # fmt: skip
            seq = len(self.log)
        for channel in watchers:
            threading.Thread(target=_notify, args=(channel, seq), daemon=True).start()
        return written

    def events(self, calendar: str) -> list[RemoteEvent]:
        with self.lock:
            return [remote_from_dict(e) for e in self.calendars[calendar].values()]

    async def list_calendars(self, request: Request) -> Response:
        if request.headers.get("x-toy-password") != PASSWORD:
            return JSONResponse({"error": "wrong password"}, status_code=401)
        return JSONResponse([{"id": name, "name": name.title()} for name in self.calendars])

    async def changes(self, request: Request) -> Response:
        calendar, since = request.path_params["cal"], int(request.query_params.get("since", -1))
        with self.lock:
            stored, total = self.calendars[calendar], len(self.log)
            ids = stored if since < 0 else {i for c, i in self.log[since:] if c == calendar}
            listed = [stored[i] for i in ids if i in stored]
        return JSONResponse({"events": listed, "next": total, "full": since < 0})

    async def get(self, request: Request) -> Response:
        found = self.calendars[request.path_params["cal"]].get(request.path_params["id"])
        return JSONResponse(found) if found else JSONResponse({}, status_code=404)

    async def put(self, request: Request) -> Response:
        calendar, event_id = request.path_params["cal"], request.path_params["id"]
        current = self.calendars[calendar].get(event_id)
        wanted = request.headers.get("if-match")
        if wanted is not None and (current is None or current["version"] != wanted):
            return JSONResponse({}, status_code=412)
        remote = remote_from_dict({**(await request.json()), "id": event_id})
        return JSONResponse(remote_to_dict(self.write(calendar, remote)))

    async def delete(self, request: Request) -> Response:
        calendar, event_id = request.path_params["cal"], request.path_params["id"]
        if event_id in self.calendars[calendar]:
            self.write(calendar, RemoteEvent.gone(event_id))
            del self.calendars[calendar][event_id]
        return Response(status_code=204)

    async def watch(self, request: Request) -> Response:
        body = await request.json()
        channel_id = secrets.token_hex(8)
        with self.lock:
            self.channels[channel_id] = {k: str(body[k]) for k in ("calendar", "address", "token")}
        return JSONResponse({"id": channel_id})

    async def unwatch(self, request: Request) -> Response:
        with self.lock:
            self.channels.pop(request.path_params["id"], None)
        return Response(status_code=204)


def _notify(channel: dict[str, str], seq: int) -> None:
    body = {"channel": channel["id"], "token": channel["token"], "seq": seq}
    httpx.post(channel["address"], json=body, timeout=5)


# -- its provider --------------------------------------------------------------------------------


class ToyCalendar:
    write_concurrency = 1

    def __init__(self, http: httpx.Client, base: str, calendar: str, read_only: bool) -> None:
        self.http, self.base, self.read_only = http, f"{base}/calendars/{calendar}", read_only

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, self.base + path, **kwargs)
        if response.status_code >= 400:
            raise error_for_status(response.status_code, response.text)
        return response

    def list_changes(self, cursor: str | None) -> ChangePage:
        body = self._call("GET", "/changes", params={"since": cursor or "-1"}).json()
        listed = tuple(_remote(e) for e in body["events"])
        return ChangePage(listed, str(body["next"]), complete=bool(body["full"]))

    def list_window(self, start: datetime, end: datetime) -> Sequence[RemoteEvent]:
        listed = self.list_changes(None).changes
        return [r for r in listed if r.event is not None
                and as_instant(r.event.start) < end and as_instant(r.event.end) > start]

    def get(self, event_id: str) -> RemoteEvent:
        return _remote(self._call("GET", f"/events/{event_id}").json())

    def create(self, event: CanonicalEvent, idempotency_key: str, *, marker: str,
               tag: str | None = None) -> RemoteEvent:  # fmt: skip
        event_id = hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        body = remote_to_dict(RemoteEvent(event_id, None, event, marker=marker, tag=tag))
        return _remote(self._call("PUT", f"/events/{event_id}", json=body).json())

    def update(self, event_id: str, event: CanonicalEvent, if_match: str | None) -> RemoteEvent:
        marker = self.get(event_id).marker
        body = remote_to_dict(RemoteEvent(event_id, None, event, marker=marker))
        headers = {} if if_match is None else {"If-Match": if_match}
        return _remote(self._call("PUT", f"/events/{event_id}", json=body, headers=headers).json())

    def delete(self, event_id: str, if_match: str | None) -> None:
        self._call("DELETE", f"/events/{event_id}")


def _remote(data: dict[str, Any]) -> RemoteEvent:
    return remote_from_dict(data)


class ToyAccount:
    def __init__(self, base: str, password: str, http: httpx.Client) -> None:
        self.base, self.password, self.http = base.rstrip("/"), password, http

    def list_calendars(self) -> list[CalendarInfo]:
        answer = self.http.get(f"{self.base}/calendars", headers={"X-Toy-Password": self.password})
        if answer.status_code == 401:
            raise PermanentError(PermanentReason.TOKEN_REVOKED, "wrong password")
        return [CalendarInfo(c["id"], c["name"], primary=n == 0)
                for n, c in enumerate(answer.json())]  # fmt: skip

    def calendar(self, info: CalendarInfo, window: SyncWindow) -> ToyCalendar:
        return ToyCalendar(self.http, self.base, info.remote_id, info.read_only)

    def create_calendar(self, name: str, key: str) -> CalendarInfo:
        raise NotImplementedError("the toy system has no dedicated calendars")

    def open_channel(self, calendar_id: str, address: str) -> Channel:
        token = secrets.token_urlsafe(24)
        body = {"calendar": calendar_id, "address": address, "token": token}
        made = self.http.post(f"{self.base}/channels", json=body).json()
        return Channel(made["id"], calendar_id, token, datetime.now(UTC) + timedelta(days=1))

    def renew_channel(self, channel: Channel, calendar_id: str, address: str) -> Channel:
        fresh = self.open_channel(calendar_id, address)
        self.stop_channel(channel)
        return fresh

    def stop_channel(self, channel: Channel) -> None:
        self.http.delete(f"{self.base}/channels/{channel.channel_id}")

    def refresh_credentials(self) -> Credentials:
        raise NotImplementedError("a toy password does not expire")

    def close(self) -> None:
        """The HTTP client is the caller's."""


def open_account(settings: Settings, source: AccountSource, hooks: AccountHooks) -> ToyAccount:
    assert source.server_url, "a toy connection names its server"
    http = hooks.http or httpx.Client(timeout=10)
    return ToyAccount(source.server_url, str(source.credentials.get("password", "")), http)


class ToyReceiver:
    def handshake(self, delivery: Delivery) -> Reply | None:
        return None

    def notices(self, delivery: Delivery) -> list[Notice]:
        try:
            body = json.loads(delivery.body)
            channel = str(body["channel"])
        except (ValueError, KeyError, TypeError) as error:
            raise MalformedDelivery(str(error)) from None
        return [Notice(channel, f"{channel}:{body['seq']}", payload={"seq": body["seq"]},
                       proof=str(body["token"]))]  # fmt: skip

    def genuine(self, notice: Notice, delivery: Delivery, secret: str) -> bool:
        return same_secret(notice.proof, secret)

    def answer(self, tally: Tally) -> Reply:
        if tally.unknown or tally.forged:
            return Reply(401, "not a channel of ours")
        return Reply(202, {"recorded": tally.recorded})


RECEIVER = ToyReceiver()
LISTING_ID = "toy-calendar-0001"
ENTRY = ProviderEntry(
    "toy",
    Capabilities(ConnectMethod.CREDENTIALS, push=True),
    Listing(LISTING_ID, "Toy Calendar", "OTHER", "SPECIFIC_CALENDARS", "SPECIFIC_CALENDAR",
            requires_server_url=True, wix_builtin=False),
    package="toy_system",
    quota="local",
    roles={"account": "toy_system", "push": "toy_system"},
)
