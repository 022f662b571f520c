"""``/v1/tenants/{tenant_id}/messages``: send, look up, attempts log, resend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.audit import record_action
from interlink.webhooks.outbound import message_queries as service
from interlink.webhooks.outbound.api.accept_route import AcceptRoute, accept_message
from interlink.webhooks.outbound.api.common import (
    EndpointIdPath,
    MessageIdPath,
    require_endpoint,
    require_message,
)
from interlink.webhooks.outbound.api.schemas import AttemptPublic, MessageCreate, MessagePublic
from interlink.webhooks.outbound.attempts import (
    AttemptFilters,
    list_attempts,
    public_attempt,
    resend,
)

router = APIRouter(tags=["outbound webhooks"])
_BASE = "/v1/tenants/{tenant_id}/messages"
_ITEM = _BASE + "/{message_id}"
StatusQuery = Annotated[Literal["succeeded", "failed"] | None, Query(description="Outcome")]
SinceQuery = Annotated[datetime | None, Query(description="Attempts at or after this time")]
TypeQuery = Annotated[str | None, Query(max_length=200, description="Event type")]


async def create_message(
    request: Request,
    body: MessageCreate,
    scope: TenantDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> Response:
    """Send a message: it and one delivery per matching, enabled endpoint are stored in one
    transaction before the 202. A repeated ``id`` (or ``Idempotency-Key``) within the
    idempotency window answers the original message (``Idempotent-Replayed: true``) and
    creates nothing. A payload that breaks its event type's schema is refused with a 422
    naming the field. Served by :func:`accept_message` (see ``accept_route``).
    """
    return await accept_message(request)


router.add_api_route(
    _BASE,
    create_message,
    methods=["POST"],
    status_code=202,
    summary="Send a message to every matching endpoint (a repeated id is the same message)",
    route_class_override=AcceptRoute,
    response_model=MessagePublic,
    responses={
        400: {"description": "Malformed JSON"},
        404: {"description": "No such tenant"},
        422: {"description": "Invalid body or payload breaking the event type's schema"},
    },
)


@router.get(_ITEM, summary="Get a message and the state of its deliveries")
async def get_message(
    message_id: MessageIdPath, scope: TenantDep, runtime: RuntimeDep
) -> MessagePublic:
    async with runtime.db.transaction() as conn:
        row = await require_message(conn, scope.tenant_id, message_id)
    return MessagePublic(**service.public_message(row))


@router.get(_ITEM + "/attempts", summary="The attempts log of a message")
async def message_attempts(
    message_id: MessageIdPath,
    scope: TenantDep,
    runtime: RuntimeDep,
    page: PageDep,
    status: StatusQuery = None,
    endpoint_id: Annotated[str | None, Query(max_length=60)] = None,
) -> ListResponse[AttemptPublic]:
    filters = AttemptFilters(message_id=message_id, status=status, endpoint_id=endpoint_id)
    async with runtime.db.transaction() as conn:
        await require_message(conn, scope.tenant_id, message_id)
        rows = await list_attempts(
            conn, scope.tenant_id, filters, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(
        data=[AttemptPublic(**public_attempt(row)) for row in items], next_cursor=cursor
    )


@router.get(
    "/v1/tenants/{tenant_id}/endpoints/{endpoint_id}/attempts",
    summary="The attempts log of an endpoint, filtered by status, event type and time",
)
async def endpoint_attempts(
    endpoint_id: EndpointIdPath,
    scope: TenantDep,
    runtime: RuntimeDep,
    page: PageDep,
    status: StatusQuery = None,
    event_type: TypeQuery = None,
    since: SinceQuery = None,
) -> ListResponse[AttemptPublic]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    filters = AttemptFilters(
        endpoint_id=endpoint_id, status=status, event_type=event_type, since=since
    )
    async with runtime.db.transaction() as conn:
        await require_endpoint(conn, scope.tenant_id, endpoint_id)
        rows = await list_attempts(
            conn, scope.tenant_id, filters, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(
        data=[AttemptPublic(**public_attempt(row)) for row in items], next_cursor=cursor
    )


@router.post(
    _ITEM + "/endpoints/{endpoint_id}/resend",
    status_code=202,
    summary="Deliver a message to one endpoint again",
)
async def resend_message(
    message_id: MessageIdPath, endpoint_id: EndpointIdPath, scope: TenantDep, runtime: RuntimeDep
) -> MessagePublic:
    async with runtime.db.transaction() as conn:
        message = await require_message(conn, scope.tenant_id, message_id)
        await require_endpoint(conn, scope.tenant_id, endpoint_id)
        if message["payload_purged_at"] is not None:
            raise Problem(409, f"the payload of {message_id} was purged; it cannot be resent")
        await resend(
            conn, runtime.queue, tenant_id=scope.tenant_id, message=message,
            endpoint_id=endpoint_id,
        )  # fmt: skip
        await record_action(
            conn, scope.principal, "message.resent", tenant_id=scope.tenant_id,
            target=message_id, details={"endpoint_id": endpoint_id},
        )  # fmt: skip
        row = await require_message(conn, scope.tenant_id, message_id)
    return MessagePublic(**service.public_message(row))


@router.get(_BASE, summary="List messages")
async def list_messages(
    scope: TenantDep, runtime: RuntimeDep, page: PageDep, event_type: TypeQuery = None
) -> ListResponse[MessagePublic]:
    async with runtime.db.transaction() as conn:
        rows = await service.list_messages(
            conn, scope.tenant_id, event_type=event_type, after=page.after, limit=page.limit + 1
        )
    items, cursor = paginate(rows, page)
    return ListResponse(
        data=[MessagePublic(**service.public_message(row)) for row in items], next_cursor=cursor
    )
