"""Connections: connect (OAuth or credentials), get, list, list calendars, disconnect, resync.

Every route works in one transaction and hands work to the workers only after its commit; a
refused request leaves nothing behind. Another tenant's connection answers 404, like a
missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import Select, and_, or_, select

from api.auth import CallerDep
from api.errors import bad_request, conflict, precondition, responses, unavailable
from api.external_calendars.catalog import Catalogued, by_id
from api.external_calendars.common import (
    active_calendar_ids,
    calendars_by_connection,
    calendars_of,
    connection_out,
    tenant_connection,
)
from api.external_calendars.connect import Made, NewAccount, check_connectable, connect, resync_soon
from api.external_calendars.ids import CONNECTION, ConnectionId
from api.external_calendars.paging import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    make_cursor,
    not_a_cursor,
    paging_metadata,
    read_cursor,
)
from api.external_calendars.schema import (
    CalendarOut,
    ConnectByCredentialsRequest,
    ConnectByOAuthRequest,
    ConnectByOAuthResponse,
    ConnectionResponse,
    ListCalendarsResponse,
    ListConnectionsResponse,
)
from api.external_calendars.sync_config import targets
from api.handover import broker_down, sync_now
from api.oauth import state as oauth_state
from api.oauth.flows import callback_url
from config import Settings
from models import Connection, ConnectionStatus
from models.db import session_scope
from providers import registry
from providers.base import AccountSource, CalendarInfo
from providers.errors import PermanentError, PermanentReason, TransientError
from providers.netguard import UnresolvedHost, UnsafeAddress
from tasks.enqueue import (
    request_calendar_refresh,
    request_channels,
    request_disconnect,
    request_first_sync,
    request_owner_lookup,
    request_reconfigure,
)

router = APIRouter()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post(
    "/connections:connectByOAuth",
    summary="Connect By OAuth",
    description="Returns the provider's authorization page. Send the user there; they come "
    "back to `redirectUrl` with `connectionId` (or `error=reject|unsupported|internal`).",
    response_model=ConnectByOAuthResponse,
    responses=responses(400, 401, 403, 404, 409, 428, 503),
)
def connect_by_oauth(body: ConnectByOAuthRequest, caller: CallerDep, request: Request
                     ) -> ConnectByOAuthResponse:  # fmt: skip
    settings = _settings(request)
    entry = by_id(settings, body.providerId)
    flow = entry.entry.oauth
    if flow is None:
        raise precondition("this provider connects by credentials", "providerId")
    if not flow.configured(settings):
        raise precondition("this server has no OAuth client for the provider", "providerId")
    with session_scope(request.app.state.engine) as db:
        check_connectable(db, caller, body.scheduleId)
    state = oauth_state.issue(
        settings, tenant_id=caller.tenant_id, schedule_id=body.scheduleId,
        provider=entry.system, redirect_url=body.redirectUrl,
    )  # fmt: skip
    try:
        url = flow.consent_url(settings, callback_url(settings, entry.system), state)
    except TransientError:
        raise unavailable("the provider's sign-in service did not answer") from None
    return ConnectByOAuthResponse(oauthUrl=url)


@router.post(
    "/connections:connectByCredentials",
    summary="Connect By Credentials",
    description="Checks the credentials with the server at once (nothing is stored when they "
    "fail) and connects. Apple: Apple ID and an app-specific password. Generic CalDAV "
    "(calsync addition): `serverUrl`, user name (in `email`) and password.",
    response_model=ConnectionResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404, 409, 428, 503),
)
def connect_by_credentials(body: ConnectByCredentialsRequest, caller: CallerDep,
                           request: Request) -> ConnectionResponse:  # fmt: skip
    settings = _settings(request)
    entry = by_id(settings, body.providerId)
    if not entry.uses_credentials:
        raise precondition("this provider connects by OAuth", "providerId")
    url = _server_url(entry, body.serverUrl)
    with session_scope(request.app.state.engine) as db:
        check_connectable(db, caller, body.scheduleId)
    credentials = {"username": body.email, "password": body.password.get_secret_value()}
    calendars = _check_credentials(entry, url, credentials, settings)
    account = NewAccount(entry.system, body.email, credentials, calendars, server_url=url)
    with session_scope(request.app.state.engine) as db:
        made = connect(db, caller, body.scheduleId, account, settings)
        connection_id = made.connection.id
    after_connect(request, made)
    return get_connection(connection_id, caller, request)


def _server_url(entry: Catalogued, given: str | None) -> str | None:
    """The caller's server, for a system that takes one; None: the system's own (Apple's is
    calsync's setting, never the caller's URL)."""
    if not entry.out.features.requiresServerUrl:
        return None
    if not given:
        raise bad_request("required for this provider", "serverUrl", "SERVER_URL_REQUIRED")
    return given  # an absolute http(s) URL: the request's schema checked it


def _check_credentials(entry: Catalogued, url: str | None, credentials: dict[str, str],
                       settings: Settings) -> list[CalendarInfo]:  # fmt: skip
    """Sign in and list the calendars now, so a wrong password is told at once."""
    ours = url is None  # the server is calsync's to configure, not the caller's
    source = AccountSource("", entry.system, credentials, url)
    try:
        account = entry.entry.open_account(settings, source)
        try:
            return account.list_calendars()
        finally:
            account.close()
    except UnsafeAddress as error:
        if ours:
            raise unavailable("the provider's server is not reachable") from None
        raise bad_request(f"not allowed: {error}", "serverUrl", "ADDRESS_NOT_ALLOWED") from None
    except UnresolvedHost as error:
        raise bad_request(str(error), "serverUrl", "ADDRESS_NOT_ALLOWED") from None
    except PermanentError as error:
        if error.reason is PermanentReason.TOKEN_REVOKED:
            raise bad_request("the server refused the user name or password", "password",
                              code="INVALID_CREDENTIALS") from None  # fmt: skip
        raise bad_request(f"the server refused the account: {error}", "email",
                          code="ACCOUNT_REFUSED") from None  # fmt: skip
    except TransientError:
        if ours:
            raise unavailable("the provider's server did not answer") from None
        raise bad_request("no server of this kind answered at this URL", "serverUrl",
                          code="SERVER_NOT_FOUND") from None  # fmt: skip


def after_connect(request: Request, made: Made) -> None:
    """First sync, push channels, and the clean-up of a replaced connection; if the broker is
    down, the dispatcher picks the connection up within a minute instead. An account whose
    primary calendar is only learnt after connecting gets its first sync from a worker that
    learns it first."""
    settings = _settings(request)
    entry = registry.entry(made.connection.provider, settings)
    if entry.capabilities.primary_after_connect:
        sent = request_first_sync(made.connection.id)
    else:
        sent = sync_now(request, made.sync, "connect")
    if not sent:
        with session_scope(request.app.state.engine) as db:
            resync_soon(db, made.connection.id)
        return
    request_channels(made.connection.id)
    if not entry.capabilities.primary_after_connect:  # the first sync lists them otherwise
        request_calendar_refresh(made.connection.id)  # the sign-in named only some calendars
    if settings.wix_app_id and not settings.wix_local_store_url:
        request_owner_lookup(made.connection.id)  # Connection.userId, the events' owner
    if made.replaced is not None:
        request_disconnect(made.replaced)


@router.get(
    CONNECTION,
    summary="Get Connection",
    response_model=ConnectionResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404),
)
def get_connection(connection_id: ConnectionId, caller: CallerDep, request: Request
                   ) -> ConnectionResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        connection = tenant_connection(db, caller, connection_id)
        return ConnectionResponse(connection=connection_out(db, connection, _settings(request)))


@router.get(
    "/connections",
    summary="List Connections",
    description="The tenant's connections, newest first, a page at a time; `scheduleIds` "
    "narrows them down.",
    response_model=ListConnectionsResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403),
)
def list_connections(
    caller: CallerDep,
    request: Request,
    schedule_ids: Annotated[list[str] | None, Query(alias="scheduleIds", max_length=100)] = None,
    partial_failure: Annotated[bool, Query(alias="partialFailure")] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListConnectionsResponse:
    schedules, after = _read_cursor(cursor) if cursor else (schedule_ids or [], None)
    query = _connections(caller.tenant_id, schedules, after).limit(limit + 1)
    with session_scope(request.app.state.engine) as db:
        rows = list(db.scalars(query))
        page, more = rows[:limit], len(rows) > limit
        calendars = calendars_by_connection(db, [row.id for row in page])
        out = [connection_out(db, row, _settings(request), calendars[row.id]) for row in page]
    next_cursor = _make_cursor(schedules, page[-1]) if more else None
    # calsync answers from its own records, so no provider can fail here.
    return ListConnectionsResponse(connections=out,
                                   pagingMetadata=paging_metadata(len(page), next_cursor),
                                   failedProviderIds=[] if partial_failure else None)  # fmt: skip


def _connections(tenant_id: str, schedule_ids: list[str], after: tuple[datetime, str] | None
                 ) -> Select[Connection]:  # fmt: skip
    """Newest first (ties by id), from just after the last row of the previous page."""
    query = select(Connection).where(Connection.tenant_id == tenant_id)
    if schedule_ids:
        query = query.where(Connection.schedule_id.in_(schedule_ids))
    if after is not None:
        created, last_id = after
        same_time_later_id = and_(Connection.created_at == created, Connection.id > last_id)
        query = query.where(or_(Connection.created_at < created, same_time_later_id))
    return query.order_by(Connection.created_at.desc(), Connection.id)


def _make_cursor(schedule_ids: list[str], last: Connection) -> str:
    return make_cursor({"s": schedule_ids, "a": [last.created_at.isoformat(), last.id]})


def _read_cursor(cursor: str) -> tuple[list[str], tuple[datetime, str]]:
    body = read_cursor(cursor)
    try:
        created, last_id = body["a"]
        schedules = [str(s) for s in body["s"]]
        return schedules, (datetime.fromisoformat(created), str(last_id))
    except (ValueError, KeyError, TypeError):
        raise not_a_cursor() from None


@router.get(
    f"{CONNECTION}/calendars",
    summary="List Calendars",
    description="The account's calendars, as calsync learned them when connecting.",
    response_model=ListCalendarsResponse,
    responses=responses(400, 401, 403, 404),
)
def list_calendars(connection_id: ConnectionId, caller: CallerDep, request: Request
                   ) -> ListCalendarsResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        tenant_connection(db, caller, connection_id)
        rows = calendars_of(db, connection_id)
        return ListCalendarsResponse(calendars=[
            CalendarOut(id=r.remote_id, name=r.name, primary=r.is_primary, readOnly=r.read_only)
            for r in rows
        ])  # fmt: skip


@router.post(
    f"{CONNECTION}/disconnect",
    summary="Disconnect",
    description="The connection becomes DISCONNECTED at once. A worker then stops its push "
    "channels and deletes the sessions exported to the external calendar and the blocks "
    "imported into Wix (see the status endpoint's `cleanup`). Calling it again repeats the "
    "clean-up of whatever is left.",
    response_model=ConnectionResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404, 503),
)
def disconnect(connection_id: ConnectionId, caller: CallerDep, request: Request
               ) -> ConnectionResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        connection = tenant_connection(db, caller, connection_id, lock=True)
        connection.status = ConnectionStatus.DISCONNECTED
        connection.next_reconcile_at = connection.next_poll_at = None
    if not request_disconnect(connection_id):
        raise broker_down()
    return get_connection(connection_id, caller, request)


@router.post(
    f"{CONNECTION}:resync",
    summary="Resync (calsync addition)",
    description="A full sync of every synced calendar of the connection now. A connection in "
    "ERROR is tried again (after a reconnect elsewhere, or a fixed calendar).",
    response_model=ConnectionResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 404, 409, 503),
)
def resync(connection_id: ConnectionId, caller: CallerDep, request: Request
           ) -> ConnectionResponse:  # fmt: skip
    with session_scope(request.app.state.engine) as db:
        connection = tenant_connection(db, caller, connection_id, lock=True)
        if connection.status is ConnectionStatus.DISCONNECTED:
            raise conflict("the connection is disconnected", "connectionId",
                           code="DISCONNECTED")  # fmt: skip
        if connection.status is ConnectionStatus.ERROR:
            connection.status, connection.error_reason = ConnectionStatus.CONNECTED, None
            connection.error_message = None
        rows = calendars_of(db, connection_id)
        wanted = targets(connection.sync_config or {}, rows)
        calendar_ids = active_calendar_ids(rows)
    sent = (request_reconfigure(connection_id, [], [], calendar_ids, create_dedicated=True)
            if wanted.needs_dedicated else sync_now(request, calendar_ids, "resync"))  # fmt: skip
    if not sent:
        raise broker_down()
    return get_connection(connection_id, caller, request)
