"""``/v1/event-types``: the deployment's event-type catalog (changes need an admin)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from interlink.api.deps import AdminDep, PrincipalDep, RuntimeDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse
from interlink.audit import record_action
from interlink.webhooks.outbound import event_types as service
from interlink.webhooks.outbound.api.schemas import (
    EventTypeCreate,
    EventTypePublic,
    EventTypeUpdate,
)

router = APIRouter(tags=["outbound webhooks"])
_BASE = "/v1/event-types"
_ITEM = _BASE + "/{name}"
NamePath = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]


def _refused(error: service.EventTypeError) -> Problem:
    return Problem(422, str(error), slug="invalid-event-type")


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "cursor is not a cursor this API returned", slug="bad-cursor") from exc


@router.post(_BASE, status_code=201, summary="Add an event type (admin)")
async def create_event_type(
    body: EventTypeCreate, principal: AdminDep, runtime: RuntimeDep
) -> EventTypePublic:
    fields = body.model_dump(by_alias=True)
    try:
        async with runtime.db.transaction() as conn:
            if await service.get_event_type(conn, body.name) is not None:
                raise Problem(409, f"event type {body.name} already exists")
            row = await service.create_event_type(conn, fields)
            await record_action(conn, principal, "event_type.created", target=body.name)
    except service.EventTypeError as error:
        raise _refused(error) from error
    return EventTypePublic(**service.public_event_type(row))


@router.get(_BASE, summary="List event types")
async def list_event_types(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    include_archived: bool = False,
) -> ListResponse[EventTypePublic]:
    after = _decode_cursor(cursor)
    async with runtime.db.transaction() as conn:
        rows = await service.list_event_types(
            conn, after=after, limit=limit + 1, include_archived=include_archived
        )
    items = rows[:limit]
    more = len(rows) > limit and items
    next_cursor = (
        base64.urlsafe_b64encode(items[-1]["name"].encode()).decode().rstrip("=") if more else None
    )
    return ListResponse(
        data=[EventTypePublic(**service.public_event_type(row)) for row in items],
        next_cursor=next_cursor,
    )


@router.get(_ITEM, summary="Get an event type")
async def get_event_type(
    name: NamePath, principal: PrincipalDep, runtime: RuntimeDep
) -> EventTypePublic:
    async with runtime.db.transaction() as conn:
        row = await service.get_event_type(conn, name)
    if row is None:
        raise Problem.not_found("event type", name)
    return EventTypePublic(**service.public_event_type(row))


@router.patch(_ITEM, summary="Change or archive an event type (admin)")
async def update_event_type(
    name: NamePath, body: EventTypeUpdate, principal: AdminDep, runtime: RuntimeDep
) -> EventTypePublic:
    changes = body.model_dump(exclude_unset=True, by_alias=True)
    for required in ("description", "archived"):
        if required in changes and changes[required] is None:
            raise Problem(422, f"{required}: may not be null", slug="validation-error")
    try:
        async with runtime.db.transaction() as conn:
            row = await service.update_event_type(conn, name, changes)
            if row is None:
                raise Problem.not_found("event type", name)
            await record_action(
                conn, principal, "event_type.updated", target=name,
                details={"fields": sorted(changes)},
            )  # fmt: skip
    except service.EventTypeError as error:
        raise _refused(error) from error
    return EventTypePublic(**service.public_event_type(row))


@router.delete(_ITEM, status_code=204, summary="Delete an event type (admin)")
async def delete_event_type(name: NamePath, principal: AdminDep, runtime: RuntimeDep) -> Response:
    async with runtime.db.transaction() as conn:
        if not await service.delete_event_type(conn, name):
            raise Problem.not_found("event type", name)
        await record_action(conn, principal, "event_type.deleted", target=name)
    return Response(status_code=204)
