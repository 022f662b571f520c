"""FastAPI dependencies: the runtime, the caller, tenant scoping, pagination."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from interlink.api.errors import Problem
from interlink.auth.oidc import OIDCError, OIDCValidator
from interlink.auth.principal import Principal
from interlink.runtime import Runtime
from interlink.tenants.service import authenticate_token, get_tenant

__all__ = [
    "AdminDep",
    "Page",
    "PageDep",
    "PrincipalDep",
    "RuntimeDep",
    "TenantDep",
    "TenantScope",
    "cached_principal",
    "encode_cursor",
]

_AUTH_CACHE_SECONDS = 5.0
_bearer = HTTPBearer(auto_error=False, description="Admin token, API key or OIDC JWT")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="interlink"'})


def _auth_cache(runtime: Runtime) -> dict[str, tuple[Principal, float]]:
    """Principals by bearer token, each with the monotonic time it stops being trusted."""
    cache: dict[str, tuple[Principal, float]] | None = runtime.state.get("auth_cache")
    if cache is None:
        cache = runtime.state["auth_cache"] = {}
    return cache


def cached_principal(runtime: Runtime, token: str) -> Principal | None:
    """The principal ``token`` authenticated as within the last few seconds, if it did."""
    cached = _auth_cache(runtime).get(token)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    return None


async def authenticate_header(runtime: Runtime, authorization: str | None) -> Principal:
    """:func:`authenticate` for the raw value of an ``Authorization`` header, as the hot paths'
    ASGI apps have it: a bearer authenticated a moment ago costs a lookup, not the credentials
    model (about 1 % of the outbound accept path's event loop, sampled)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if token and (principal := cached_principal(runtime, token)) is not None:
        return principal
    credentials = None
    if token:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    return await authenticate(runtime, credentials)


async def authenticate(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("an Authorization: Bearer token is required")
    token = credentials.credentials
    found = cached_principal(runtime, token)
    if found is not None:
        return found
    cache = _auth_cache(runtime)
    now = time.monotonic()
    principal: Principal | None
    if token.count(".") == 2 and runtime.settings.oidc_issuer:
        validator = runtime.state.get("oidc")
        if validator is None:
            validator = runtime.state["oidc"] = OIDCValidator(runtime.settings)
        try:
            principal = await validator.validate(token)
        except OIDCError as error:
            raise _unauthorized(str(error)) from error
    else:
        configured = runtime.settings.admin_token
        async with runtime.db.transaction() as conn:
            principal = await authenticate_token(
                conn, token, configured_admin=configured.get_secret_value() if configured else None
            )
        if principal is None:
            raise _unauthorized("the bearer token is not valid or has been revoked")
    if len(cache) > 10_000:
        cache.clear()
    cache[token] = (principal, now + _AUTH_CACHE_SECONDS)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "this operation needs an admin token or admin-scoped key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


@dataclass(frozen=True)
class TenantScope:
    tenant_id: str
    principal: Principal


async def tenant_scope(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    tenant_id: Annotated[str, Path(max_length=40, description="Tenant id (ten_...)")],
) -> TenantScope:
    # Another tenant's resources answer 404, exactly like resources that do not exist.
    if not principal.can_reach(tenant_id):
        raise Problem.not_found("tenant", tenant_id)
    async with runtime.db.transaction() as conn:
        tenant = await get_tenant(conn, tenant_id)
    if tenant is None:
        raise Problem.not_found("tenant", tenant_id)
    return TenantScope(tenant_id=tenant_id, principal=principal)


TenantDep = Annotated[TenantScope, Depends(tenant_scope)]


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Page:
    limit: int
    after: str | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> Page:
    after = None
    if cursor:
        try:
            after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise Problem(
                400, "cursor is not a cursor this API returned", slug="bad-cursor"
            ) from exc
        if "_" not in after or len(after) > 60:
            raise Problem(400, "cursor is not a cursor this API returned", slug="bad-cursor")
    return Page(limit=limit, after=after)


PageDep = Annotated[Page, Depends(page_params)]
