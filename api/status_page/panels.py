"""Room on a business's status page for panels of other modules (the demo world shows each
staff member's Wix schedule and calendars side by side, with buttons to change them).

A panel is registered once per process, before the app is built (e.g. in
`workers.cli.api_app`), and needs nothing from `app.state`:

    from api.status_page.panels import Panel, add_panel, html

    def render(view: PanelView) -> Markup | None:
        return html("<h2>Demo</h2><form method=post action='{{ base }}/book'>"
                    "<input type=hidden name=csrf value='{{ view.csrf }}'>...</form>",
                    base=view.route_base, view=view)

    add_panel(Panel("demo", render, router=demo_router))

The page renders it in the `demo` block of `tenant.html`, above the connections (None: nothing
for this business). Its `router`, if any, is mounted under `/status/panels/<name>` behind the
page's basic auth; its forms check their token with `api.status_page.access.check_form` and
answer with a 303 back to `/status/tenants/<tenant id>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from jinja2 import Environment
from markupsafe import Markup
from sqlalchemy import Engine

from config import Settings

_SNIPPETS = Environment(autoescape=True)


@dataclass(frozen=True)
class PanelView:
    """What a panel knows of the page it is drawn on."""

    tenant_id: str
    settings: Settings
    engine: Engine
    csrf: str  # the forms' token (`access.TOKEN_FIELD`)
    route_base: str  # where the panel's router is mounted


@dataclass(frozen=True)
class Panel:
    name: str
    render: Callable[[PanelView], Markup | None]
    router: APIRouter | None = None


_panels: dict[str, Panel] = {}


def add_panel(panel: Panel) -> None:
    """Register (or replace, by name) a panel for every status page built from now on."""
    _panels[panel.name] = panel


def remove_panel(name: str) -> None:
    _panels.pop(name, None)


def registered() -> list[Panel]:
    return list(_panels.values())


def route_base(panel: Panel) -> str:
    return f"/status/panels/{panel.name}"


def html(template: str, **values: Any) -> Markup:
    """A snippet rendered with the page's escaping: values are escaped unless Markup."""
    return Markup(_SNIPPETS.from_string(template).render(**values))
