"""`calendarView/delta`: pages with `@odata.nextLink` ($skiptoken), a final `@odata.deltaLink`
($deltatoken), later rounds with changed events and `@removed`.

A delta token remembers the window and the changeKey of every instance the client was given.
The next round diffs the current calendar view against it: new or changed instances come back
whole; instances that left the view (deleted, cancelled, moved out of the window) and instances
changed outside the window come back as `{"@removed": {"reason": "deleted"}}`.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from .context import Ctx
from .errors import GraphError, bad_request
from .resources import render_event
from .zones import format_utc, parse_iso

if TYPE_CHECKING:
    from .state import GraphState

UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search", "$top")


@dataclass
class _Token:
    user_id: str
    calendar_id: str | None
    start: datetime
    end: datetime
    issued: datetime
    expired: bool = False
    # a delta token: what the client holds after this round
    seq: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    # a skip token: the rest of a round, and the delta token it ends with
    rest: list[dict[str, Any]] = field(default_factory=list)
    final: _Token | None = None


class DeltaStore:
    def __init__(self, state: GraphState) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, _Token] = OrderedDict()

    def expire_all(self, user_id: str | None = None) -> int:
        with self._lock:
            hits = [t for t in self._tokens.values() if user_id is None or t.user_id == user_id]
            for token in hits:
                _forget(token)
            return len(hits)

    def _save(self, token: _Token) -> str:
        key = secrets.token_urlsafe(24)
        limit = self._state.settings.delta_max_tokens
        with self._lock:
            self._tokens[key] = token
            live = [
                t for t in self._tokens.values() if t.user_id == token.user_id and not t.expired
            ]
            for old in live[: max(0, len(live) - limit)]:
                _forget(old)  # Outlook's token lifetime is cache-size bound: the oldest go first
        return key

    def _load(self, key: str) -> _Token | None:
        with self._lock:
            token = self._tokens.get(key)
        ttl = self._state.settings.delta_token_ttl
        if token is not None and ttl is not None and self._state.now() - token.issued > ttl:
            _forget(token)
        return token

    # ---- rounds ---------------------------------------------------------------------------------

    def _snapshot(self, token: _Token) -> tuple[list[Any], int]:
        with self._state.lock:
            seq = self._state.mailbox(token.user_id).seq
            view = self._state.calendar_view(
                token.user_id, token.calendar_id, token.start, token.end
            )
        return view, seq

    def first_round(self, ctx: Ctx, calendar_id: str | None) -> Response:
        start_text, end_text = ctx.param("startDateTime"), ctx.param("endDateTime")
        if not start_text or not end_text:
            raise missing_window()
        start, end = parse_iso(start_text), parse_iso(end_text)
        self._state.calendar(ctx.user_id, calendar_id)  # 404 for an unknown calendar
        token = _Token(ctx.user_id, calendar_id, start, end, self._state.now())
        view, seq = self._snapshot(token)
        items = [self._render(ctx, i) for i in view]
        final = _Token(
            ctx.user_id,
            calendar_id,
            start,
            end,
            self._state.now(),
            seq=seq,
            versions={i.id: i.change_key for i in view},
        )
        return self._page(ctx, items, final)

    def next_round(self, ctx: Ctx, key: str) -> Response:
        held = self._usable(ctx, key)
        if held.final is not None:  # a skip token: continue the round in progress
            return self._page(ctx, held.rest, held.final)
        view, seq = self._snapshot(held)
        items: list[dict[str, Any]] = []
        seen = {i.id for i in view}
        for instance in view:
            if held.versions.get(instance.id) != instance.change_key:
                items.append(self._render(ctx, instance))
        gone = [i for i in held.versions if i not in seen]
        touched = self._state.mailbox(held.user_id).touched
        gone += [
            i
            for i, at in touched.items()
            if at > held.seq and i not in seen and i not in held.versions
        ]
        items += [removed(i) for i in gone]
        final = _Token(
            held.user_id,
            held.calendar_id,
            held.start,
            held.end,
            self._state.now(),
            seq=seq,
            versions={i.id: i.change_key for i in view},
        )
        return self._page(ctx, items, final)

    def _usable(self, ctx: Ctx, key: str) -> _Token:
        held = self._load(key)
        if held is None or held.user_id != ctx.user_id:
            raise sync_state_not_found()
        if held.expired:
            if self._state.settings.delta_expiry == "gone":
                fresh = ctx.link(
                    {
                        "startDateTime": format_utc(held.start),
                        "endDateTime": format_utc(held.end),
                        "$deltatoken": "",
                    }
                )
                raise GraphError(
                    410,
                    "resyncRequired",
                    "The delta token is no longer valid, and the app must reset the sync state.",
                    headers={"Location": fresh},
                )
            raise sync_state_not_found()
        return held

    def _page(self, ctx: Ctx, items: list[dict[str, Any]], final: _Token) -> Response:
        size = _page_size(ctx)
        body: dict[str, Any] = {
            "@odata.context": f"{ctx.base}/v1.0/$metadata#Collection(event)",
            "value": items[:size],
        }
        if len(items) > size:
            rest = _Token(
                final.user_id,
                final.calendar_id,
                final.start,
                final.end,
                self._state.now(),
                rest=items[size:],
                final=final,
            )
            body["@odata.nextLink"] = ctx.link({"$skiptoken": self._save(rest)})
        else:
            body["@odata.deltaLink"] = ctx.link({"$deltatoken": self._save(final)})
        headers = (
            {"Preference-Applied": f"odata.maxpagesize={size}"}
            if ("odata.maxpagesize" in ctx.prefs)
            else {}
        )
        return JSONResponse(body, headers=headers)

    def _render(self, ctx: Ctx, instance: Any) -> dict[str, Any]:
        user = self._state.mailbox(ctx.user_id).user
        return render_event(instance, user, ctx.zone, body_as_text=ctx.body_as_text)


def _forget(token: _Token) -> None:
    token.expired = True
    token.versions, token.rest, token.final = {}, [], None


def _page_size(ctx: Ctx) -> int:
    raw = ctx.prefs.get("odata.maxpagesize")
    if raw is None:
        return ctx.state.settings.delta_page_size
    try:
        return max(1, min(int(raw), 1000))
    except ValueError:
        raise bad_request(f"Invalid odata.maxpagesize {raw!r}") from None


def removed(event_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


def missing_window() -> GraphError:
    return GraphError(
        400,
        "ErrorInvalidParameter",
        "This request requires a time window specified "
        "by the query string parameters StartDateTime and EndDateTime.",
    )


def sync_state_not_found() -> GraphError:
    return GraphError(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta "
        "token is expired and data must be synchronized again.",
    )


def delta(ctx: Ctx, calendar_id: str | None) -> Response:
    """GET .../calendarView/delta: first round, following page, or next round."""
    bad = [p for p in UNSUPPORTED if p in ctx.request.query_params]
    if bad:
        raise GraphError(
            400,
            "ErrorInvalidUrlQuery",
            "The following parameters are not supported "
            f"with change tracking over the 'CalendarView' resource: {', '.join(bad)}",
        )
    store = ctx.state.delta
    key = ctx.param("$skiptoken") or ctx.param("$deltatoken")
    return store.next_round(ctx, key) if key else store.first_round(ctx, calendar_id)
