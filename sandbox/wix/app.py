"""The ASGI app: token endpoint, Calendar V3 routes, admin routes, fault injection around them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from sandbox.wix import admin, events
from sandbox.wix.errors import WixError
from sandbox.wix.faults import FaultMiddleware
from sandbox.wix.oauth import token_endpoint
from sandbox.wix.state import WixState
from sandbox.wix.web import wix_error_response


def create_app(state: WixState | None = None) -> Starlette:
    """Serve `state` (a fresh, empty one by default). A state made here is closed on shutdown;
    one passed in belongs to the caller."""
    owned = state is None
    wix = state or WixState()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if owned:
            wix.close()

    app = Starlette(
        routes=[
            Route("/oauth2/token", token_endpoint, methods=["POST"]),
            *events.routes,
            *admin.routes,
        ],
        middleware=[Middleware(FaultMiddleware, plan=wix.faults)],
        exception_handlers={WixError: wix_error_response},
        lifespan=lifespan,
    )
    app.state.wix = wix
    return app
