"""A calendar store over HTTP: `providers.local.memory.MemoryCalendar`s served to other processes.

Real worker processes (which tests kill, restart and race) write to it through
`providers.local`, the tests inspect and edit it like a person would, and it pushes signed change
notifications to calsync's webhook like Google does. HTTP-level faults (5xx, 429 with
Retry-After, slowness) sit in front of the calendars; every request is logged with its time so
tests can check nobody called before a Retry-After ran out.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from providers.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    PreconditionFailed,
    ProviderError,
    TransientError,
)
from providers.local.memory import MemoryCalendar
from sandbox.store.push import Pusher
from sync.codec import event_from_dict, remote_to_dict

BATCH_LIMIT = 100


@dataclass
class HttpFault:
    """Answer `status` to the next `times` requests (optionally only those whose method and
    path match, or whose body contains a marker: one poisoned event among many)."""

    status: int
    times: int
    retry_after: float | None = None
    method: str | None = None
    path_contains: str | None = None
    body_contains: str | None = None

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
            and (self.body_contains is None or self.body_contains.encode() in body)
        )


@dataclass
class StoreState:
    calendars: dict[str, MemoryCalendar] = field(default_factory=dict)
    faults: list[HttpFault] = field(default_factory=list)
    slow_ms: int = 0
    requests: list[tuple[float, str, str, int]] = field(
        default_factory=list
    )  # t, method, path, status
    lock: threading.RLock = field(default_factory=threading.RLock)
    pusher: Pusher = field(default_factory=Pusher)

    def calendar(self, name: str) -> MemoryCalendar:
        with self.lock:
            if name not in self.calendars:
                raise KeyError(name)
            return self.calendars[name]

    def add_calendar(self, name: str, read_only: bool = False) -> MemoryCalendar:
        with self.lock:
            if name not in self.calendars:
                # Wall-clock modification times, so lag can be read off the store.
                self.calendars[name] = MemoryCalendar(
                    name, read_only=read_only, clock=lambda: datetime.now(UTC)
                )
            return self.calendars[name]

    def changed(self, name: str, event_id: str) -> None:
        """Push a notification naming the event and its new version, as Graph does (so a
        receiver can tell the echo of its own write without a round trip)."""
        with self.lock:
            version = self.calendar(name).get(event_id).version
        self.pusher.notify(name, event_id, version)

    def take_fault(self, method: str, path: str, body: bytes, *, whole_batch: bool = False
                   ) -> HttpFault | None:  # fmt: skip
        """The next fault for a request. A batch as a whole meets only faults that name no
        body: one poisoned event fails its own item, as a real provider's batch answers."""
        with self.lock:
            for fault in self.faults:
                if whole_batch and fault.body_contains is not None:
                    continue
                if fault.times > 0 and fault.matches(method, path, body):
                    fault.times -= 1
                    return fault
            return None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _provider_error(error: ProviderError) -> JSONResponse:
    return _error(*_status_of(error), str(error))


def _status_of(error: ProviderError) -> tuple[int, str]:
    if isinstance(error, PreconditionFailed):
        return 412, "precondition_failed"
    if isinstance(error, NotFound):
        return 404, "not_found"
    if isinstance(error, CursorExpired):
        return 410, "cursor_expired"
    if isinstance(error, PermanentError):
        return 403, error.reason.value
    if isinstance(error, TransientError):
        return 503, "unavailable"
    return 400, "bad_request"


Handler = Callable[[Request, StoreState], Awaitable[Response]]


def route(path: str, handler: Handler, methods: list[str]) -> Route:
    async def endpoint(request: Request) -> Response:
        state: StoreState = request.app.state.store
        try:
            return await handler(request, state)
        except ProviderError as error:
            return _provider_error(error)
        except KeyError as missing:
            return _error(404, "no_such_calendar", str(missing))

    return Route(path, endpoint, methods=methods)


async def list_changes(request: Request, state: StoreState) -> Response:
    with state.lock:
        page = state.calendar(request.path_params["cal"]).list_changes(
            request.query_params.get("cursor")
        )
    return JSONResponse(
        {"changes": [remote_to_dict(r) for r in page.changes], "nextCursor": page.next_cursor,
         "complete": page.complete}
    )  # fmt: skip


async def get_event(request: Request, state: StoreState) -> Response:
    with state.lock:
        remote = state.calendar(request.path_params["cal"]).get(request.path_params["id"])
    return JSONResponse(remote_to_dict(remote))


async def create_event(request: Request, state: StoreState) -> Response:
    body = await request.json()
    name = request.path_params["cal"]
    with state.lock:
        remote = state.calendar(name).create(
            event_from_dict(body["event"]), body["idempotencyKey"],
            marker=body["marker"], tag=body.get("tag"),
        )  # fmt: skip
    state.changed(name, remote.id)
    return JSONResponse(remote_to_dict(remote), status_code=201)


async def update_event(request: Request, state: StoreState) -> Response:
    body = await request.json()
    name = request.path_params["cal"]
    with state.lock:
        remote = state.calendar(name).update(
            request.path_params["id"], event_from_dict(body["event"]),
            request.headers.get("if-match"),
        )  # fmt: skip
    state.changed(name, remote.id)
    return JSONResponse(remote_to_dict(remote))


async def delete_event(request: Request, state: StoreState) -> Response:
    name = request.path_params["cal"]
    with state.lock:
        state.calendar(name).delete(request.path_params["id"], request.headers.get("if-match"))
    state.changed(name, request.path_params["id"])
    return Response(status_code=204)


async def write_batch(request: Request, state: StoreState) -> Response:
    """Several writes in one request, each answered on its own (`{"status", "event"|"error"}`)
    in order; one write's failure leaves the others applied. Each write meets the faults and
    enters the request log as the single request it stands for, so tests count writes the same
    whether they came alone or in a batch."""
    writes = (await request.json())["writes"]
    if len(writes) > BATCH_LIMIT:
        return _error(400, "batch_too_large", f"at most {BATCH_LIMIT} writes per batch")
    if state.slow_ms and len(writes) > 1:  # a slow server is slow per write, batched or not
        await asyncio.sleep(state.slow_ms * (len(writes) - 1) / 1000)
    name = request.path_params["cal"]
    with state.lock:
        calendar = state.calendar(name)
        answers = [_item_answer(state, calendar, write) for write in writes]
    for write, answer in zip(writes, answers, strict=True):
        if answer["status"] < 300:
            with suppress(NotFound):  # a delete of an event the store never had
                state.changed(name, answer["event"]["id"] if "event" in answer else write["id"])
    return JSONResponse({"results": answers})


def _item_answer(state: StoreState, calendar: MemoryCalendar, write: dict[str, Any]
                 ) -> dict[str, Any]:  # fmt: skip
    method, path = _single_request(calendar.name, write)
    fault = state.take_fault(method, path, json.dumps(write).encode())
    answer: dict[str, Any]
    if fault is not None:
        answer = {"status": fault.status, "error": {"code": "injected", "message": "injected"},
                  "retryAfter": fault.retry_after}  # fmt: skip
    else:
        answer = _answer(calendar, write)
    state.requests.append((time.time(), method, path, int(answer["status"])))
    return answer


def _single_request(name: str, write: dict[str, Any]) -> tuple[str, str]:
    events = f"/calendars/{name}/events"
    if write["kind"] == "create":
        return "POST", events
    return ("PUT" if write["kind"] == "update" else "DELETE"), f"{events}/{write['id']}"


def _answer(calendar: MemoryCalendar, write: dict[str, Any]) -> dict[str, Any]:
    try:
        return _applied(calendar, write)
    except ProviderError as error:
        status, code = _status_of(error)
        return {"status": status, "error": {"code": code, "message": str(error)}}


def _applied(calendar: MemoryCalendar, write: dict[str, Any]) -> dict[str, Any]:
    if write["kind"] == "create":
        made = calendar.create(event_from_dict(write["event"]), write["idempotencyKey"],
                               marker=write["marker"], tag=write.get("tag"))  # fmt: skip
        return {"status": 201, "event": remote_to_dict(made)}
    if write["kind"] == "update":
        event = event_from_dict(write["event"])
        changed = calendar.update(write["id"], event, write.get("ifMatch"))
        return {"status": 200, "event": remote_to_dict(changed)}
    calendar.delete(write["id"], write.get("ifMatch"))
    return {"status": 204}


def create_app(state: StoreState | None = None) -> Starlette:
    from sandbox.store.admin import admin_routes

    store = state or StoreState()
    prefix = "/calendars/{cal}"
    app = Starlette(
        routes=[
            route(f"{prefix}/changes", list_changes, ["GET"]),
            route(f"{prefix}/events", create_event, ["POST"]),
            route(f"{prefix}/batch", write_batch, ["POST"]),
            route(f"{prefix}/events/{{id}}", get_event, ["GET"]),
            route(f"{prefix}/events/{{id}}", update_event, ["PUT"]),
            route(f"{prefix}/events/{{id}}", delete_event, ["DELETE"]),
            *admin_routes(),
        ]
    )
    app.state.store = store

    async def faults_and_log(request: Request, call_next: Any) -> Response:
        started = time.time()
        response = await _apply_faults(request, store, call_next)
        if not request.url.path.startswith("/_store"):
            with store.lock:
                store.requests.append(
                    (started, request.method, request.url.path, response.status_code)
                )
        return response

    app.add_middleware(BaseHTTPMiddleware, dispatch=faults_and_log)
    return app


async def _apply_faults(request: Request, store: StoreState, call_next: Any) -> Response:
    if request.url.path.startswith("/_store"):
        return await call_next(request)
    if store.slow_ms:
        await asyncio.sleep(store.slow_ms / 1000)
    whole_batch = request.url.path.endswith("/batch")
    fault = store.take_fault(request.method, request.url.path, await request.body(),
                             whole_batch=whole_batch)  # fmt: skip
    if fault is None:
        return await call_next(request)
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    response = _error(fault.status, "injected", "injected fault")
    response.headers.update(headers)
    return response
