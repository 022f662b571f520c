"""``/v1/tenants/{tenant_id}/sources``: inbound-webhook sources."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.audit import record_action
from interlink.runtime import Runtime
from interlink.webhooks.inbound import sources as service
from interlink.webhooks.inbound.api.common import SourceIdPath, require_source
from interlink.webhooks.inbound.api.schemas import (
    SecretRotate,
    SourceCreate,
    SourcePublic,
    SourceUpdate,
)
from interlink.webhooks.inbound.state import inbound_state

router = APIRouter(tags=["inbound webhooks"])
_BASE = "/v1/tenants/{tenant_id}/sources"


def _public(runtime: Runtime, row: dict[str, Any]) -> SourcePublic:
    return SourcePublic(**service.public_source(row, runtime.settings.effective_public_url))


def _forget(runtime: Runtime, source_id: str) -> None:
    state = inbound_state(runtime)
    state.cache.invalidate(source_id)
    state.limiter.forget(source_id)


def _config_problem(error: service.SourceConfigError) -> Problem:
    if isinstance(error, service.UnknownConnectionError):
        errors = [{"field": error.field, "message": error.reason}]
        return Problem(422, str(error), slug="validation-error", errors=errors)
    return Problem(422, str(error), slug="invalid-source")


def _connections_installed(runtime: Runtime) -> bool:
    return any(capability.name == "connections" for capability in runtime.capabilities)


def _rate_columns(rate_limit: Any) -> dict[str, Any]:
    if rate_limit is None:
        return {"rate_limit_per_second": None, "rate_limit_burst": None}
    return {"rate_limit_per_second": rate_limit.per_second, "rate_limit_burst": rate_limit.burst}


@router.post(_BASE, status_code=201, summary="Create a source (the answer carries its ingest_url)")
async def create_source(body: SourceCreate, scope: TenantDep, runtime: RuntimeDep) -> SourcePublic:
    fields = body.model_dump(exclude={"provider", "secret", "rate_limit"})
    fields.update(_rate_columns(body.rate_limit))
    state = inbound_state(runtime)
    try:
        async with runtime.db.transaction() as conn:
            row = await service.create_source(
                conn,
                runtime.vault,
                state.registry,
                tenant_id=scope.tenant_id,
                provider=body.provider,
                secret=body.secret,
                fields=fields,
                connections_installed=_connections_installed(runtime),
            )
            await record_action(
                conn,
                scope.principal,
                "source.created",
                tenant_id=scope.tenant_id,
                target=row["id"],
                details={"provider": body.provider},
            )
    except service.SourceConfigError as error:
        raise _config_problem(error) from error
    _forget(runtime, row["id"])
    return _public(runtime, row)


@router.get(_BASE, summary="List sources")
async def list_sources(
    scope: TenantDep, runtime: RuntimeDep, page: PageDep
) -> ListResponse[SourcePublic]:
    async with runtime.db.transaction() as conn:
        rows = await service.list_sources(
            conn, scope.tenant_id, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(data=[_public(runtime, row) for row in items], next_cursor=cursor)


@router.get(_BASE + "/{source_id}", summary="Get a source (never its secret)")
async def get_source(
    source_id: SourceIdPath, scope: TenantDep, runtime: RuntimeDep
) -> SourcePublic:
    async with runtime.db.transaction() as conn:
        row = await require_source(conn, scope.tenant_id, source_id)
    return _public(runtime, row)


@router.patch(_BASE + "/{source_id}", summary="Change a source")
async def update_source(
    source_id: SourceIdPath, body: SourceUpdate, scope: TenantDep, runtime: RuntimeDep
) -> SourcePublic:
    changes = body.model_dump(exclude_unset=True, exclude={"rate_limit"})
    if "rate_limit" in body.model_fields_set:
        changes.update(_rate_columns(body.rate_limit))
    for required in ("name", "enabled", "options"):
        if required in changes and changes[required] is None:
            raise Problem(422, f"{required}: may not be null", slug="validation-error")
    try:
        async with runtime.db.transaction() as conn:
            current = await require_source(conn, scope.tenant_id, source_id)
            row = await service.update_source(
                conn,
                runtime.vault,
                inbound_state(runtime).registry,
                current,
                changes,
                connections_installed=_connections_installed(runtime),
            )
            await record_action(
                conn,
                scope.principal,
                "source.updated",
                tenant_id=scope.tenant_id,
                target=source_id,
                details={"fields": sorted(changes)},
            )
    except service.SourceConfigError as error:
        raise _config_problem(error) from error
    _forget(runtime, source_id)
    return _public(runtime, row)


@router.delete(_BASE + "/{source_id}", status_code=204, summary="Delete a source and its log")
async def delete_source(source_id: SourceIdPath, scope: TenantDep, runtime: RuntimeDep) -> Response:
    async with runtime.db.transaction() as conn:
        if not await service.delete_source(conn, scope.tenant_id, source_id):
            raise Problem.not_found("source", source_id)
        await record_action(
            conn, scope.principal, "source.deleted", tenant_id=scope.tenant_id, target=source_id
        )
    _forget(runtime, source_id)
    return Response(status_code=204)


@router.post(
    _BASE + "/{source_id}/secret/rotate",
    summary="Replace the signing secret (the old one may stay valid for a grace period)",
)
async def rotate_secret(
    source_id: SourceIdPath, body: SecretRotate, scope: TenantDep, runtime: RuntimeDep
) -> SourcePublic:
    try:
        async with runtime.db.transaction() as conn:
            current = await require_source(conn, scope.tenant_id, source_id)
            row = await service.rotate_source_secret(
                conn,
                runtime.vault,
                inbound_state(runtime).registry,
                current,
                body.secret,
                body.grace_seconds,
            )
            await record_action(
                conn,
                scope.principal,
                "source.secret_rotated",
                tenant_id=scope.tenant_id,
                target=source_id,
                details={"grace_seconds": body.grace_seconds},
            )
    except service.SourceConfigError as error:
        raise _config_problem(error) from error
    _forget(runtime, source_id)
    return _public(runtime, row)
