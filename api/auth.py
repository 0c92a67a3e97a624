"""Tenant API keys: `Authorization: Bearer <key>`, stored only as a SHA-256 hash.

A key is 32 random bytes (url-safe), prefixed `csk_` so it is recognisable in a leak scan. It is
shown once, by `calsync tenants create` (or `rotate-key`), and never stored: the tenants table
keeps its hash, which is what a request's key is looked up by.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.rate_limits import admit
from models import Tenant, TenantStatus
from models.db import session_scope

KEY_PREFIX = "csk_"
bearer = HTTPBearer(auto_error=False, description="The tenant's API key")


@dataclass(frozen=True)
class Caller:
    """The tenant a request acts for."""

    tenant_id: str
    instance_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class TenantExists(ValueError):
    pass


def create_tenant(db: Session, instance_id: str, name: str | None = None) -> tuple[Tenant, str]:
    """A tenant for a Wix app instance, and its API key (returned once, stored hashed)."""
    if db.scalar(select(Tenant).where(Tenant.wix_instance_id == instance_id)) is not None:
        raise TenantExists(f"a tenant for instance {instance_id} exists already")
    key = new_key()
    tenant = Tenant(wix_instance_id=instance_id, name=name, api_key_hash=hash_key(key))
    db.add(tenant)
    db.flush()
    return tenant, key


def rotate_key(db: Session, instance_id: str) -> str | None:
    """A new key for the tenant (the old one stops working at once); None if no such tenant."""
    tenant = db.scalar(select(Tenant).where(Tenant.wix_instance_id == instance_id))
    if tenant is None:
        return None
    key = new_key()
    tenant.api_key_hash = hash_key(key)
    return key


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, field="Authorization", headers={"WWW-Authenticate": "Bearer"})


def lookup(request: Request, key: str) -> Caller:
    with session_scope(request.app.state.engine) as db:
        tenant = db.scalar(select(Tenant).where(Tenant.api_key_hash == hash_key(key)))
        if tenant is None:
            raise _unauthenticated("unknown API key")
        if tenant.status is not TenantStatus.ACTIVE:
            raise ApiError(403, "this tenant is disabled", code="PERMISSION_DENIED")
        return Caller(tenant.id, tenant.wix_instance_id)


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthenticated("send the tenant's API key as `Authorization: Bearer <key>`")
    key = credentials.credentials.strip()
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise _unauthenticated("unknown API key")
    return await run_in_threadpool(_admitted, request, key)


def _admitted(request: Request, key: str) -> Caller:
    """The key's tenant, once its rate limit lets the request through; only a good key spends
    a token, so a stranger cannot drain a tenant's bucket."""
    caller = lookup(request, key)
    admit(request, caller.tenant_id)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
