"""`POST /webhooks/{system}[/{path}]` served straight from ASGI.

Every push notification of every calendar system lands on this route, so it is answered ahead
of FastAPI's routing, dependency solving and exception middleware, by the same code
(`systems.deliver`) and with the same answers, errors included. Anything else goes on to the
app: Wix's webhooks, a system that does not push (answered 404 by the routes), and every other
path. The routes in `systems` also document these deliveries in the OpenAPI schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError
from api.webhooks.systems import deliver, pushes

PATH = re.compile(r"/webhooks/(?P<system>[^/]+)(?:/(?P<path>[^/]+))?")


@dataclass(frozen=True)
class Template:
    """The route template the request metrics label these requests with."""

    path: str = "/webhooks/{system}"


class DirectWebhooks:
    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        system, path = self._taken(scope)
        if system is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = Template()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        try:
            response = await deliver(self.state, system, path, headers, query,
                                     lambda: _body(receive))  # fmt: skip
        except ApiError as error:
            response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
        await response(scope, receive, send)

    def _taken(self, scope: Scope) -> tuple[str | None, str]:
        """The system and path of a delivery this serves; None for anything else."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None, ""
        found = PATH.fullmatch(scope["path"])
        if found is None or not pushes(self.state.settings, found["system"]):
            return None, ""
        return found["system"], found["path"] or ""


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
