"""``.../sources/{source_id}/destinations``: where a source's events are forwarded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.audit import record_action
from interlink.egress import EgressError
from interlink.runtime import Runtime
from interlink.webhooks.inbound import destinations as service
from interlink.webhooks.inbound.api.common import DestinationIdPath, SourceIdPath, require_source
from interlink.webhooks.inbound.api.schemas import (
    DestinationCreate,
    DestinationCreated,
    DestinationPublic,
    DestinationSecret,
    DestinationUpdate,
)
from interlink.webhooks.inbound.routing import FilterError
from interlink.webhooks.inbound.state import inbound_state

router = APIRouter(tags=["inbound webhooks"])
_BASE = "/v1/tenants/{tenant_id}/sources/{source_id}/destinations"


async def _check_url(runtime: Runtime, url: str) -> None:
    try:
        await inbound_state(runtime).egress.validate_url(url)
    except EgressError as error:
        raise Problem(
            422,
            f"url: {error}",
            slug="invalid-destination",
            hint="internal addresses need INTERLINK_EGRESS_ALLOW",
        ) from error


async def _require(
    runtime: Runtime, tenant_id: str, source_id: str, destination_id: str
) -> dict[str, Any]:
    async with runtime.db.transaction() as conn:
        await require_source(conn, tenant_id, source_id)
        row = await service.get_destination(conn, tenant_id, source_id, destination_id)
    if row is None:
        raise Problem.not_found("destination", destination_id)
    return row


@router.post(_BASE, status_code=201, summary="Add a destination (answer carries its secret)")
async def create_destination(
    source_id: SourceIdPath, body: DestinationCreate, scope: TenantDep, runtime: RuntimeDep
) -> DestinationCreated:
    await _check_url(runtime, body.url)
    try:
        async with runtime.db.transaction() as conn:
            await require_source(conn, scope.tenant_id, source_id)
            row, secret = await service.create_destination(
                conn,
                runtime.vault,
                tenant_id=scope.tenant_id,
                source_id=source_id,
                fields=body.model_dump(),
            )
            await record_action(
                conn,
                scope.principal,
                "destination.created",
                tenant_id=scope.tenant_id,
                target=row["id"],
                details={"source_id": source_id},
            )
    except FilterError as error:
        raise Problem(422, f"filter: {error}", slug="invalid-filter") from error
    return DestinationCreated(**service.public_destination(row), secret=secret)


@router.get(_BASE, summary="List a source's destinations")
async def list_destinations(
    source_id: SourceIdPath, scope: TenantDep, runtime: RuntimeDep, page: PageDep
) -> ListResponse[DestinationPublic]:
    async with runtime.db.transaction() as conn:
        await require_source(conn, scope.tenant_id, source_id)
        rows = await service.list_destinations(
            conn, scope.tenant_id, source_id, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(
        data=[DestinationPublic(**service.public_destination(r)) for r in items], next_cursor=cursor
    )


@router.get(_BASE + "/{destination_id}", summary="Get a destination")
async def get_destination(
    source_id: SourceIdPath,
    destination_id: DestinationIdPath,
    scope: TenantDep,
    runtime: RuntimeDep,
) -> DestinationPublic:
    row = await _require(runtime, scope.tenant_id, source_id, destination_id)
    return DestinationPublic(**service.public_destination(row))


@router.get(_BASE + "/{destination_id}/secret", summary="Get a destination's signing secret")
async def get_destination_secret(
    source_id: SourceIdPath,
    destination_id: DestinationIdPath,
    scope: TenantDep,
    runtime: RuntimeDep,
) -> DestinationSecret:
    row = await _require(runtime, scope.tenant_id, source_id, destination_id)
    return DestinationSecret(secret=service.destination_secret(runtime.vault, row))


@router.patch(_BASE + "/{destination_id}", summary="Change a destination's URL or rules")
async def update_destination(
    source_id: SourceIdPath,
    destination_id: DestinationIdPath,
    body: DestinationUpdate,
    scope: TenantDep,
    runtime: RuntimeDep,
) -> DestinationPublic:
    changes = body.model_dump(exclude_unset=True)
    for required in ("url", "enabled"):
        if required in changes and changes[required] is None:
            raise Problem(422, f"{required}: may not be null", slug="validation-error")
    if changes.get("description", "") is None:
        changes["description"] = ""
    if changes.get("url"):
        await _check_url(runtime, changes["url"])
    try:
        async with runtime.db.transaction() as conn:
            await require_source(conn, scope.tenant_id, source_id)
            current = await service.get_destination(
                conn, scope.tenant_id, source_id, destination_id
            )
            if current is None:
                raise Problem.not_found("destination", destination_id)
            row = await service.update_destination(conn, current, changes)
            await record_action(
                conn,
                scope.principal,
                "destination.updated",
                tenant_id=scope.tenant_id,
                target=destination_id,
                details={"fields": sorted(changes)},
            )
    except FilterError as error:
        raise Problem(422, f"filter: {error}", slug="invalid-filter") from error
    return DestinationPublic(**service.public_destination(row))


@router.delete(_BASE + "/{destination_id}", status_code=204, summary="Remove a destination")
async def delete_destination(
    source_id: SourceIdPath,
    destination_id: DestinationIdPath,
    scope: TenantDep,
    runtime: RuntimeDep,
) -> Response:
    await _require(runtime, scope.tenant_id, source_id, destination_id)
    async with runtime.db.transaction() as conn:
        await service.delete_destination(conn, destination_id)
        await record_action(
            conn,
            scope.principal,
            "destination.deleted",
            tenant_id=scope.tenant_id,
            target=destination_id,
        )
    return Response(status_code=204)
