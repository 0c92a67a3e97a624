"""Small builders for the planner's unit tests: events, policies, linked pairs, plans."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.actions import Action, PlanResult
from sync.event import CanonicalEvent, ExternalCalendarOverrides
from sync.link import Link, link_id_for
from sync.mapping import copy_of
from sync.planner import plan
from sync.policy import ConnectionPolicy
from sync.side import Side
from sync.snapshot import RemoteEvent, SideSnapshot

CONNECTION = "c1"
T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
WIX, EXTERNAL = Side.WIX, Side.EXTERNAL


def event(title: str = "Yoga", hour: int = 0, **changes: Any) -> CanonicalEvent:
    start = T0 + timedelta(hours=hour)
    base = CanonicalEvent(
        title=title,
        start=start,
        end=start + timedelta(hours=1),
        description="Bring a mat",
        location="Studio 1",
    )
    return replace(base, **changes)


def policy(**changes: Any) -> ConnectionPolicy:
    return replace(ConnectionPolicy(CONNECTION, "google"), **changes)


def remote(
    event_id: str,
    content: CanonicalEvent | None,
    version: str = "v1",
    **changes: Any,
) -> RemoteEvent:
    return replace(RemoteEvent(event_id, version, content), **changes)


def pair(
    origin: Side = WIX,
    content: CanonicalEvent | None = None,
    conn: ConnectionPolicy | None = None,
    overrides: ExternalCalendarOverrides | None = None,
) -> tuple[Link, RemoteEvent, RemoteEvent]:
    """A pair in sync: (link, the Wix event, the external event), both at version v1."""
    conn = conn or policy()
    content = content or event()
    ids = {WIX: "w1", EXTERNAL: "e1"}
    copy = copy_of(origin, content, conn, overrides)
    events = {origin: content, origin.other: copy}
    link = Link(
        link_id=link_id_for(CONNECTION, origin, ids[origin]),
        origin=origin,
        base=content,
        wix_id="w1",
        external_id="e1",
        wix_version="v1",
        external_version="v1",
        wix_seen=events[WIX],
        external_seen=events[EXTERNAL],
        wix_overrides=overrides,
    )
    wix = remote("w1", events[WIX], overrides=overrides)
    external = remote("e1", events[EXTERNAL])
    return link, wix, external


def run(
    wix: Iterable[RemoteEvent] = (),
    external: Iterable[RemoteEvent] = (),
    links: Iterable[Link] = (),
    conn: ConnectionPolicy | None = None,
    *,
    complete: bool = False,
    allow_mass_delete: bool = False,
) -> PlanResult:
    return plan(
        SideSnapshot(WIX, tuple(wix), complete),
        SideSnapshot(EXTERNAL, tuple(external), complete),
        list(links),
        conn or policy(),
        allow_mass_delete=allow_mass_delete,
    )


def kinds(result: PlanResult) -> list[tuple[str, str | None, str]]:
    """(action type, side written or None, reason) for each action, in order."""
    return [(type(a).__name__, _side_of(a), a.reason.value) for a in result.actions]


def _side_of(action: Action) -> str | None:
    side = getattr(action, "side", None)
    return side.value if isinstance(side, Side) else None


def skipped(result: PlanResult) -> list[tuple[str, str | None, str]]:
    return [(s.side.value, s.event_id, s.reason.value) for s in result.skipped]
