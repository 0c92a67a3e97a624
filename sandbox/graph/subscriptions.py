"""`/v1.0/subscriptions`: create (with the validation handshake), get, list, renew, delete,
reauthorize."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .context import apply_faults, authenticate, json_body, mailbox_user, require_scope
from .errors import GraphError
from .notify import is_loopback_url
from .oauth import Caller
from .state import SubscriptionRecord
from .zones import parse_iso

if TYPE_CHECKING:
    from .state import GraphState

CHANGE_TYPES = {"created", "updated", "deleted"}
TLS_VERSIONS = {"v1_0", "v1_1", "v1_2", "v1_3"}
_RESOURCE = re.compile(r"^/?(?:(?P<me>me)|users/(?P<user>[^/]+))/events$", re.IGNORECASE)
_PATCHABLE = {"expirationDateTime", "notificationUrl"}


def _invalid(message: str) -> GraphError:
    return GraphError(400, "InvalidRequest", message)


def render(sub: SubscriptionRecord, base: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{base}/v1.0/$metadata#subscriptions/$entity",
        "id": sub.id,
        "resource": sub.resource,
        "applicationId": sub.application_id,
        "changeType": ",".join(
            t for t in ("created", "updated", "deleted") if t in sub.change_types
        ),
        "clientState": sub.client_state,
        "notificationUrl": sub.notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": sub.lifecycle_url,
        "expirationDateTime": sub.expiration.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
        "creatorId": sub.creator_id,
        "includeResourceData": False,
        "latestSupportedTlsVersion": sub.tls_version,
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
        "notificationContentType": None,
    }


async def validate_endpoint(url: str, timeout: float) -> None:
    """The handshake: POST `url?validationToken=...`, expect 200 text/plain echoing the token."""
    token = (
        "Validation: Testing client application reachability for subscription Request-Id: "
        f"{uuid.uuid4()}"
    )
    target = (
        url + ("&" if urlsplit(url).query else "?") + "validationToken=" + quote(token, safe="")
    )
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.post(target, headers=headers, content=b"")
    except httpx.HTTPError as exc:
        raise GraphError(
            400,
            "ValidationError",
            "Subscription validation request failed. "
            f"Notification endpoint must respond with 200 OK to validation request. "
            f"({type(exc).__name__})",
        ) from None
    kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    if answer.status_code != 200 or kind != "text/plain":
        raise GraphError(
            400,
            "ValidationError",
            "Subscription validation request failed. "
            "Notification endpoint must respond with 200 OK and text/plain to "
            f"validation request (got {answer.status_code} {kind or 'no type'}).",
        )
    if answer.text != token:
        raise GraphError(
            400,
            "ValidationError",
            "Subscription validation request failed. "
            "Response must exactly match validationToken query parameter.",
        )


def _check_url(value: Any, field: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise _invalid(f"{field} must be an absolute URL.")
    if not is_loopback_url(value):
        raise _invalid(f"{field} must point at a loopback address in the sandbox.")
    return value


def _check_expiration(state: GraphState, value: Any) -> Any:
    if not isinstance(value, str):
        raise _invalid("expirationDateTime is required.")
    expires, now = parse_iso(value), state.now()
    limit = state.settings.subscription_max_minutes
    if expires <= now:
        raise _invalid("Subscription expiration must be in the future.")
    if expires > now + timedelta(minutes=limit):
        raise _invalid(f"Subscription expiration can only be {limit} minutes in the future.")
    return expires


def _change_types(value: Any) -> frozenset[str]:
    types = frozenset(t.strip() for t in str(value or "").split(",") if t.strip())
    if not types or not types <= CHANGE_TYPES:
        raise _invalid("changeType must be a comma-separated list of created, updated, deleted.")
    return types


def _owner(state: GraphState, caller: Caller | None, resource: Any) -> str:
    match = _RESOURCE.match(resource) if isinstance(resource, str) else None
    if match is None:
        raise _invalid(
            f"Resource '{resource}' is not supported: use /me/events or /users/{{id}}/events."
        )
    return mailbox_user(state, caller, None if match.group("me") else match.group("user"))


def _visible(state: GraphState, caller: Caller | None, sub_id: str) -> SubscriptionRecord:
    """A subscription is only visible to the app that created it."""
    sub = state.subscription(sub_id)
    if caller is not None and caller.client_id != sub.application_id:
        raise GraphError(404, "ResourceNotFound", f"The object was not found: {sub_id}")
    return sub


def routes(state: GraphState) -> list[Route]:
    settings = state.settings

    def begin(request: Request, user_id: str | None = None) -> Caller | None:
        caller = authenticate(state, request)
        apply_faults(state, request, caller, user_id or (caller.user_id if caller else None) or "-")
        require_scope(caller, write=False)
        return caller

    async def create(request: Request) -> Response:
        caller = begin(request)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        user_id = _owner(state, caller, body.get("resource"))
        if body.get("includeResourceData"):
            raise _invalid(
                "Rich notifications (includeResourceData) are not supported by the sandbox."
            )
        client_state = body.get("clientState")
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > 128
        ):
            raise _invalid("clientState must be a string of at most 128 characters.")
        tls = body.get("latestSupportedTlsVersion") or "v1_2"
        if tls not in TLS_VERSIONS:
            raise _invalid(f"latestSupportedTlsVersion {tls!r} is invalid.")
        change_types = _change_types(body.get("changeType"))
        expires = _check_expiration(state, body.get("expirationDateTime"))
        url = _check_url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        if lifecycle is not None:
            lifecycle = _check_url(lifecycle, "lifecycleNotificationUrl")
        if len(state.active_subscriptions(user_id)) >= settings.max_subscriptions_per_mailbox:
            raise GraphError(
                403,
                "ExtensionError",
                "Operation failed: the mailbox has reached its limit of active subscriptions.",
            )
        for endpoint in [url] + ([lifecycle] if lifecycle else []):
            await validate_endpoint(endpoint, settings.validation_timeout)
        sub = SubscriptionRecord(
            id=str(uuid.uuid4()), user_id=user_id, resource=body["resource"],
            change_types=change_types, notification_url=url, lifecycle_url=lifecycle,
            client_state=client_state, expiration=expires,
            application_id=caller.client_id if caller else "sandbox-client",
            creator_id=(caller.user_id or user_id) if caller else user_id, tls_version=tls,
        )  # fmt: skip
        with state.lock:
            state.subscriptions[sub.id] = sub
        return JSONResponse(render(sub, _base(request)), 201)

    async def list_all(request: Request) -> Response:
        caller = begin(request)
        subs = [
            s
            for s in state.active_subscriptions()
            if caller is None or s.application_id == caller.client_id
        ]
        return JSONResponse(
            {
                "@odata.context": f"{_base(request)}/v1.0/$metadata#subscriptions",
                "value": [render(s, _base(request)) for s in subs],
            }
        )

    async def get_one(request: Request) -> Response:
        caller = begin(request)
        return JSONResponse(
            render(_visible(state, caller, request.path_params["sid"]), _base(request))
        )

    async def renew(request: Request) -> Response:
        caller = begin(request)
        sub = _visible(state, caller, request.path_params["sid"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        if "lifecycleNotificationUrl" in body:
            raise _invalid(
                "lifecycleNotificationUrl can only be set when the subscription is created."
            )
        unknown = set(body) - _PATCHABLE
        if unknown:
            raise _invalid(
                f"Only expirationDateTime and notificationUrl can be updated, not "
                f"{', '.join(sorted(unknown))}."
            )
        expires = (
            _check_expiration(state, body["expirationDateTime"])
            if ("expirationDateTime" in body)
            else sub.expiration
        )
        url = sub.notification_url
        if "notificationUrl" in body and body["notificationUrl"] != url:
            url = _check_url(body["notificationUrl"], "notificationUrl")
            await validate_endpoint(url, settings.validation_timeout)
        with state.lock:
            sub.expiration, sub.notification_url = expires, url
            sub.needs_reauthorization = sub.paused = False  # renewing also reauthorizes
        return JSONResponse(render(sub, _base(request)))

    async def delete(request: Request) -> Response:
        caller = begin(request)
        sub = _visible(state, caller, request.path_params["sid"])
        with state.lock:
            state.subscriptions.pop(sub.id, None)
        return Response(status_code=204)

    async def reauthorize(request: Request) -> Response:
        caller = begin(request)
        sub = _visible(state, caller, request.path_params["sid"])
        with state.lock:
            sub.needs_reauthorization = sub.paused = False
        return Response(status_code=204)

    return [
        Route("/v1.0/subscriptions", create, methods=["POST"]),
        Route("/v1.0/subscriptions", list_all, methods=["GET"]),
        Route("/v1.0/subscriptions/{sid}", get_one, methods=["GET"]),
        Route("/v1.0/subscriptions/{sid}", renew, methods=["PATCH"]),
        Route("/v1.0/subscriptions/{sid}", delete, methods=["DELETE"]),
        Route("/v1.0/subscriptions/{sid}/reauthorize", reauthorize, methods=["POST"]),
    ]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")
