"""``/v1/tenants/{tenant_id}/endpoints``: outbound endpoints, their secrets and recovery."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from fastapi import APIRouter, Response

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.audit import record_action
from interlink.runtime import Runtime
from interlink.webhooks.outbound import endpoint_secrets
from interlink.webhooks.outbound import endpoints as service
from interlink.webhooks.outbound.api.common import EndpointIdPath, require_endpoint
from interlink.webhooks.outbound.api.schemas import (
    EndpointCreate,
    EndpointPublic,
    EndpointSecret,
    EndpointUpdate,
    RecoverRequest,
    RecoverResult,
    SecretRotate,
)
from interlink.webhooks.outbound.attempts import recover_endpoint
from interlink.webhooks.outbound.state import outbound_state

router = APIRouter(tags=["outbound webhooks"])
_BASE = "/v1/tenants/{tenant_id}/endpoints"
_ITEM = _BASE + "/{endpoint_id}"


def _public(runtime: Runtime, row: dict[str, Any], secret: str | None = None) -> EndpointPublic:
    return EndpointPublic(**service.public_endpoint(runtime.vault, row), secret=secret)


def _refused(error: service.EndpointConfigError) -> Problem:
    return Problem(422, str(error), slug="invalid-endpoint")


@router.post(_BASE, status_code=201, summary="Create an endpoint (the answer carries its secret)")
async def create_endpoint(
    body: EndpointCreate, scope: TenantDep, runtime: RuntimeDep
) -> EndpointPublic:
    state = outbound_state(runtime)
    fields = body.model_dump(exclude={"url", "secret", "asymmetric", "auth"}, exclude_none=True)
    auth = body.auth.model_dump() if body.auth else None
    try:
        await service.check_url(state.egress, body.url)
        await service.check_auth(state.egress, auth)
        async with runtime.db.transaction() as conn:
            row, secret = await service.create_endpoint(
                conn,
                runtime.vault,
                tenant_id=scope.tenant_id,
                fields={"url": body.url, **fields},
                secret=body.secret,
                asymmetric=body.asymmetric,
                auth=auth,
                default_timeout=state.config.default_timeout,
            )
            await record_action(
                conn, scope.principal, "endpoint.created", tenant_id=scope.tenant_id,
                target=row["id"], details={"url": body.url},
            )  # fmt: skip
    except service.EndpointConfigError as error:
        raise _refused(error) from error
    return _public(runtime, row, secret)


@router.get(_BASE, summary="List endpoints")
async def list_endpoints(
    scope: TenantDep, runtime: RuntimeDep, page: PageDep
) -> ListResponse[EndpointPublic]:
    async with runtime.db.transaction() as conn:
        rows = await service.list_endpoints(
            conn, scope.tenant_id, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(data=[_public(runtime, row) for row in items], next_cursor=cursor)


@router.get(_ITEM, summary="Get an endpoint, with its health")
async def get_endpoint(
    endpoint_id: EndpointIdPath, scope: TenantDep, runtime: RuntimeDep
) -> EndpointPublic:
    async with runtime.db.transaction() as conn:
        row = await require_endpoint(conn, scope.tenant_id, endpoint_id)
    return _public(runtime, row)


@router.patch(_ITEM, summary="Change an endpoint (re-enabling it resets its failure counters)")
async def update_endpoint(
    endpoint_id: EndpointIdPath, body: EndpointUpdate, scope: TenantDep, runtime: RuntimeDep
) -> EndpointPublic:
    changes = body.model_dump(exclude_unset=True, exclude={"auth"})
    for required in ("url", "disabled", "timeout_seconds", "description"):
        if required in changes and changes[required] is None:
            raise Problem(422, f"{required}: may not be null", slug="validation-error")
    for defaulted in ("metadata", "headers"):
        if defaulted in changes and changes[defaulted] is None:
            changes[defaulted] = {}
    auth: Any = False
    if "auth" in body.model_fields_set:
        auth = body.auth.model_dump() if body.auth else None
    try:
        egress = outbound_state(runtime).egress
        if "url" in changes:
            await service.check_url(egress, changes["url"])
        if isinstance(auth, dict):
            await service.check_auth(egress, auth)
        fields = sorted([*changes, *(["auth"] if auth is not False else [])])
        async with runtime.db.transaction() as conn:
            current = await require_endpoint(conn, scope.tenant_id, endpoint_id, lock=True)
            row = await service.update_endpoint(conn, runtime.vault, current, changes, auth=auth)
            await record_action(
                conn, scope.principal, "endpoint.updated", tenant_id=scope.tenant_id,
                target=endpoint_id, details={"fields": fields},
            )  # fmt: skip
    except service.EndpointConfigError as error:
        raise _refused(error) from error
    return _public(runtime, row)


@router.delete(_ITEM, status_code=204, summary="Delete an endpoint and its deliveries")
async def delete_endpoint(
    endpoint_id: EndpointIdPath, scope: TenantDep, runtime: RuntimeDep
) -> Response:
    async with runtime.db.transaction() as conn:
        if not await service.delete_endpoint(conn, scope.tenant_id, endpoint_id):
            raise Problem.not_found("endpoint", endpoint_id)
        await record_action(
            conn, scope.principal, "endpoint.deleted", tenant_id=scope.tenant_id, target=endpoint_id
        )
    return Response(status_code=204)


@router.get(_ITEM + "/secret", summary="The endpoint's current signing secret")
async def get_secret(
    endpoint_id: EndpointIdPath, scope: TenantDep, runtime: RuntimeDep
) -> EndpointSecret:
    async with runtime.db.transaction() as conn:
        row = await require_endpoint(conn, scope.tenant_id, endpoint_id)
        await record_action(
            conn, scope.principal, "endpoint.secret_read", tenant_id=scope.tenant_id,
            target=endpoint_id,
        )  # fmt: skip
    public = service.public_endpoint(runtime.vault, row)
    return EndpointSecret(
        key=endpoint_secrets.active_secrets(runtime.vault, row)[0],
        previous_key_expires_at=public["previous_secret_expires_at"],
        public_key=public["public_key"],
    )


@router.post(
    _ITEM + "/secret/rotate",
    summary="Replace the signing secret; the old one keeps signing for the grace period",
)
async def rotate_secret(
    endpoint_id: EndpointIdPath, body: SecretRotate, scope: TenantDep, runtime: RuntimeDep
) -> EndpointSecret:
    grace = timedelta(seconds=body.grace_seconds)
    try:
        async with runtime.db.transaction() as conn:
            current = await require_endpoint(conn, scope.tenant_id, endpoint_id, lock=True)
            row, secret = await service.rotate_secret(conn, runtime.vault, current, body.key, grace)
            await record_action(
                conn, scope.principal, "endpoint.secret_rotated", tenant_id=scope.tenant_id,
                target=endpoint_id, details={"grace_seconds": body.grace_seconds},
            )  # fmt: skip
    except service.EndpointConfigError as error:
        raise _refused(error) from error
    return EndpointSecret(
        key=secret,
        previous_key_expires_at=row["previous_secret_expires_at"],
        public_key=endpoint_secrets.public_key(runtime.vault, row),
    )


@router.post(_ITEM + "/recover", summary="Resend everything that failed since a time")
async def recover(
    endpoint_id: EndpointIdPath, body: RecoverRequest, scope: TenantDep, runtime: RuntimeDep
) -> RecoverResult:
    since = body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)
    async with runtime.db.transaction() as conn:
        await require_endpoint(conn, scope.tenant_id, endpoint_id)
        count = await recover_endpoint(conn, runtime.queue, scope.tenant_id, endpoint_id, since)
        await record_action(
            conn, scope.principal, "endpoint.recovered", tenant_id=scope.tenant_id,
            target=endpoint_id, details={"since": since.isoformat(), "resent": count},
        )  # fmt: skip
    return RecoverResult(resent=count)
