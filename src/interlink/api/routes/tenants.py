"""Tenants and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response

from interlink.api.deps import AdminDep, Page, PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import JSONObject, ListResponse, Name, StrictModel, paginate
from interlink.tenants import service

router = APIRouter(tags=["tenants"])


class TenantCreate(StrictModel):
    name: Name
    metadata: JSONObject | None = None


class TenantPublic(StrictModel):
    id: str
    name: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ApiKeyCreate(StrictModel):
    name: Name | None = None


class ApiKeyPublic(StrictModel):
    id: str
    tenant_id: str | None
    scope: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str


def _key_public(row: dict[str, Any]) -> ApiKeyPublic:
    return ApiKeyPublic(**{k: v for k, v in row.items() if k != "key_hash"})


@router.post("/v1/tenants", status_code=201, summary="Create a tenant (admin)")
async def create_tenant(body: TenantCreate, runtime: RuntimeDep, admin: AdminDep) -> TenantPublic:
    async with runtime.db.transaction() as conn:
        row = await service.create_tenant(conn, body.name, admin, metadata=body.metadata)
    return TenantPublic(**row)


@router.get("/v1/tenants", summary="List tenants (admin)")
async def list_tenants(
    runtime: RuntimeDep, admin: AdminDep, page: PageDep
) -> ListResponse[TenantPublic]:
    async with runtime.db.transaction() as conn:
        rows = await service.list_tenants(conn, after=page.after, limit=page.limit + 1)
    items, cursor = paginate(rows, page)
    return ListResponse(data=[TenantPublic(**row) for row in items], next_cursor=cursor)


@router.get("/v1/tenants/{tenant_id}", summary="Get a tenant")
async def get_tenant(scope: TenantDep, runtime: RuntimeDep) -> TenantPublic:
    async with runtime.db.transaction() as conn:
        row = await service.get_tenant(conn, scope.tenant_id)
    if row is None:
        raise Problem.not_found("tenant", scope.tenant_id)
    return TenantPublic(**row)


async def _create_key(
    runtime: RuntimeDep, scope_principal: Any, tenant_id: str | None, name: str | None
) -> ApiKeyCreated:
    async with runtime.db.transaction() as conn:
        created = await service.create_api_key(
            conn, scope_principal, tenant_id=tenant_id, name=name or ""
        )
    public = _key_public(created.record)
    return ApiKeyCreated(**public.model_dump(), key=created.key)


@router.post(
    "/v1/tenants/{tenant_id}/api-keys",
    status_code=201,
    summary="Create a tenant API key (the key is shown only in this answer)",
)
async def create_tenant_key(
    body: ApiKeyCreate, scope: TenantDep, runtime: RuntimeDep
) -> ApiKeyCreated:
    return await _create_key(runtime, scope.principal, scope.tenant_id, body.name)


@router.get("/v1/tenants/{tenant_id}/api-keys", summary="List a tenant's API keys")
async def list_tenant_keys(
    scope: TenantDep, runtime: RuntimeDep, page: PageDep
) -> ListResponse[ApiKeyPublic]:
    return await _list_keys(runtime, scope.tenant_id, page)


@router.delete(
    "/v1/tenants/{tenant_id}/api-keys/{key_id}", status_code=204, summary="Revoke an API key"
)
async def revoke_tenant_key(key_id: str, scope: TenantDep, runtime: RuntimeDep) -> Response:
    async with runtime.db.transaction() as conn:
        revoked = await service.revoke_api_key(
            conn, scope.principal, key_id=key_id, tenant_id=scope.tenant_id
        )
    if not revoked:
        raise Problem.not_found("api key", key_id)
    runtime.state.get("auth_cache", {}).clear()
    return Response(status_code=204)


@router.post("/v1/api-keys", status_code=201, summary="Create an admin-scoped API key (admin)")
async def create_admin_key(
    body: ApiKeyCreate, runtime: RuntimeDep, admin: AdminDep
) -> ApiKeyCreated:
    return await _create_key(runtime, admin, None, body.name)


@router.get("/v1/api-keys", summary="List admin-scoped API keys (admin)")
async def list_admin_keys(
    runtime: RuntimeDep, admin: AdminDep, page: PageDep
) -> ListResponse[ApiKeyPublic]:
    return await _list_keys(runtime, None, page)


@router.delete("/v1/api-keys/{key_id}", status_code=204, summary="Revoke an admin-scoped key")
async def revoke_admin_key(key_id: str, runtime: RuntimeDep, admin: AdminDep) -> Response:
    async with runtime.db.transaction() as conn:
        revoked = await service.revoke_api_key(conn, admin, key_id=key_id, tenant_id=None)
    if not revoked:
        raise Problem.not_found("api key", key_id)
    runtime.state.get("auth_cache", {}).clear()
    return Response(status_code=204)


async def _list_keys(
    runtime: RuntimeDep, tenant_id: str | None, page: Page
) -> ListResponse[ApiKeyPublic]:
    async with runtime.db.transaction() as conn:
        rows = await service.list_api_keys(
            conn, tenant_id=tenant_id, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(data=[_key_public(row) for row in items], next_cursor=cursor)
