"""Per-request plumbing shared by the Graph routes: caller, mailbox, faults, preferences, links."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request

from .errors import GraphError, access_denied, bad_request
from .oauth import Caller
from .zones import preferences, resolve_zone

if TYPE_CHECKING:
    from .state import GraphState

_WRITE_SCOPES = {"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"}


@dataclass
class Ctx:
    request: Request
    state: GraphState
    caller: Caller | None
    user_id: str  # mailbox addressed by /me or /users/{id}
    prefs: dict[str, str]

    @property
    def zone(self) -> str:
        """`Prefer: outlook.timezone` (validated), UTC when absent."""
        zone = self.prefs.get("outlook.timezone") or "UTC"
        resolve_zone(zone)
        return zone

    @property
    def body_as_text(self) -> bool:
        return self.prefs.get("outlook.body-content-type", "").lower() == "text"

    @property
    def base(self) -> str:
        return str(self.request.base_url).rstrip("/")

    def link(self, params: dict[str, Any]) -> str:
        """This request's URL with other query parameters (for nextLink/deltaLink)."""
        return f"{self.base}{self.request.url.path}?{urlencode(params, safe='$')}"

    def param(self, name: str) -> str | None:
        return self.request.query_params.get(name)


def authenticate(state: GraphState, request: Request) -> Caller | None:
    if not state.settings.require_auth:
        return None
    return state.identity.check_bearer(request.headers.get("authorization"))


def apply_faults(state: GraphState, request: Request, caller: Caller | None, user_id: str) -> None:
    key = f"{caller.client_id if caller else '-'}|{user_id}"
    err = state.faults.check(request.method, request.url.path, key)
    if err is not None:
        raise err


def require_scope(caller: Caller | None, write: bool) -> None:
    if caller is None or caller.app_only:
        return
    scopes = set(caller.scopes)
    if write and not scopes & _WRITE_SCOPES:
        raise access_denied("Access is denied: the token lacks Calendars.ReadWrite.")
    if not write and not any(s.startswith("Calendars.") for s in scopes):
        raise access_denied("Access is denied: the token lacks a Calendars permission.")


def mailbox_user(state: GraphState, caller: Caller | None, ref: str | None) -> str:
    """The user id that `/me` (ref None) or `/users/{ref}` means for this caller."""
    if ref is None:
        if caller is None:
            users = state.users()
            if not users:
                raise GraphError(404, "ErrorInvalidUser", "The sandbox has no user.")
            login = state.identity.login_user
            return state.mailbox(login).user.id if login else users[0].id
        if caller.user_id is None:
            raise bad_request(
                "/me request is only valid with delegated authentication flow.", "BadRequest"
            )
        return caller.user_id
    user_id = state.mailbox(ref).user.id
    if caller is not None and caller.user_id is not None and caller.user_id != user_id:
        raise access_denied()
    return user_id


def api_context(state: GraphState, request: Request, *, write: bool = False) -> Ctx:
    caller = authenticate(state, request)
    user_id = mailbox_user(state, caller, request.path_params.get("user"))
    apply_faults(state, request, caller, user_id)
    require_scope(caller, write)
    return Ctx(request, state, caller, user_id, preferences(request.headers.get("prefer")))


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
