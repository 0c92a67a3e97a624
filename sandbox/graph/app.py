"""The ASGI app: Graph API routes, the identity platform routes, and the admin routes."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import admin, batch, events, oauth, subscriptions
from .errors import GraphError, error_body, error_response
from .state import GraphState


async def _graph_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in Graph's error shape too."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        body = error_body(
            "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
        )
        return JSONResponse(body, 405)
    body = error_body("BadRequest", f"Resource not found for the segment '{request.url.path}'.")
    return JSONResponse(body, 400 if request.url.path.startswith("/v1.0/") else exc.status_code)


class _RequestIds:
    """Graph answers every request with `request-id` and echoes `client-request-id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        client_id = headers.get(b"client-request-id", str(uuid.uuid4()).encode())

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"request-id", str(uuid.uuid4()).encode()),
                    (b"client-request-id", client_id),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_ids)


class _LostAnswers:
    """`faults.lose_answers`: the request is served, then its answer swapped for a 504."""

    def __init__(self, app: ASGIApp, graph: GraphState) -> None:
        self.app = app
        self.graph = graph

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.graph.faults
        if scope["type"] != "http" or not faults.should_lose_answer(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        await error_response(faults.lost_answer())(scope, receive, send)


def create_app(state: GraphState | None = None) -> Starlette:
    """A Graph sandbox app over `state` (a fresh one if None), reachable as `app.state.graph`."""
    graph = state or GraphState()
    app = Starlette(
        routes=[
            *admin.routes(graph),
            *subscriptions.routes(graph),
            *events.build_routes(graph),
            *batch.routes(graph),
            *oauth.routes(graph),
        ],
        exception_handlers={GraphError: _graph_error, HTTPException: _http_error},
    )
    app.add_middleware(_LostAnswers, graph=graph)
    app.add_middleware(_RequestIds)
    app.state.graph = graph
    return app
