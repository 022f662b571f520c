"""``/v1/tenants/{tenant_id}/connections``: create, list, get and delete connections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.connections import lifecycle, service
from interlink.connections.api.common import ConnectionIdPath, problem_of_flow
from interlink.connections.api.schemas import ConnectionCreate, ConnectionPublic
from interlink.connections.oauth import FlowError
from interlink.connections.state import connections_state

router = APIRouter(tags=["connections"])
_BASE = "/v1/tenants/{tenant_id}/connections"
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    _BASE,
    status_code=201,
    summary="Connect with an API key, basic credentials or OAuth client credentials",
    responses={422: _PROBLEM, 502: _PROBLEM, 503: _PROBLEM},
)
async def create_connection(
    body: ConnectionCreate, scope: TenantDep, runtime: RuntimeDep
) -> ConnectionPublic:
    """The credentials are checked with the provider's health probe before they are stored:
    a refusal (401/403) answers 422, an unreachable provider 502 or 503, and nothing is stored.
    """
    state = connections_state(runtime)
    try:
        row = await lifecycle.create_connection(
            state,
            scope.principal,
            tenant_id=scope.tenant_id,
            provider_name=body.provider,
            auth_type=body.auth_type,
            credentials=body.credentials,
            config=body.config,
            name=body.name,
            metadata=body.metadata,
            verify=body.verify,
        )
    except FlowError as error:
        raise problem_of_flow(error) from error
    return ConnectionPublic(**service.public_connection(row))


@router.get(_BASE, summary="List connections")
async def list_connections(
    scope: TenantDep,
    runtime: RuntimeDep,
    page: PageDep,
    provider: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z0-9_-]+$")] = None,
    status: Annotated[
        Literal["active", "refreshing", "expired", "revoked", "error"] | None, Query()
    ] = None,
) -> ListResponse[ConnectionPublic]:
    async with runtime.db.transaction() as conn:
        rows = await service.list_connections(
            conn,
            scope.tenant_id,
            after=page.after,
            limit=page.limit + 1,
            provider=provider,
            status=status,
        )
    items, cursor = paginate(rows, page)
    return ListResponse(
        data=[ConnectionPublic(**service.public_connection(r)) for r in items], next_cursor=cursor
    )


@router.get(_BASE + "/{connection_id}", summary="Get a connection (status, config, health)")
async def get_connection(
    connection_id: ConnectionIdPath, scope: TenantDep, runtime: RuntimeDep
) -> ConnectionPublic:
    async with runtime.db.transaction() as conn:
        row = await service.get_connection(conn, connection_id, scope.tenant_id)
    if row is None:
        raise Problem.not_found("connection", connection_id)
    return ConnectionPublic(**service.public_connection(row))


@router.post(
    _BASE + "/{connection_id}/revoke",
    summary="Revoke the token at the provider and keep the connection as revoked",
    responses={404: _PROBLEM},
)
async def revoke_connection(
    connection_id: ConnectionIdPath, scope: TenantDep, runtime: RuntimeDep
) -> ConnectionPublic:
    """Where the provider supports revocation (RFC 7009 or its own endpoint) the token is
    revoked there; either way every credential is forgotten, the status becomes ``revoked`` and
    ``connection.revoked`` is emitted. Proxy calls then answer 424 ``connection-revoked``
    until the connection is authorized again. Revoking twice changes nothing."""
    state = connections_state(runtime)
    row = await lifecycle.revoke_connection(state, scope.principal, scope.tenant_id, connection_id)
    if row is None:
        raise Problem.not_found("connection", connection_id)
    return ConnectionPublic(**service.public_connection(row))


@router.delete(
    _BASE + "/{connection_id}",
    status_code=204,
    summary="Revoke the token at the provider (where supported) and delete the connection",
)
async def delete_connection(
    connection_id: ConnectionIdPath, scope: TenantDep, runtime: RuntimeDep
) -> Response:
    state = connections_state(runtime)
    if not await lifecycle.delete_connection(
        state, scope.principal, scope.tenant_id, connection_id
    ):
        raise Problem.not_found("connection", connection_id)
    return Response(status_code=204)
