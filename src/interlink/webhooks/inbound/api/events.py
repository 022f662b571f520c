"""``.../sources/{source_id}/events``: the received-events log and replay."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.audit import record_action
from interlink.webhooks.inbound import events_log
from interlink.webhooks.inbound.api.common import EventIdPath, SourceIdPath, require_source
from interlink.webhooks.inbound.api.schemas import (
    ForwardPublic,
    RangeReplay,
    RangeReplayed,
    ReceivedEventDetail,
    ReceivedEventSummary,
    ReplayAccepted,
    aware,
)

router = APIRouter(tags=["inbound webhooks"])
_BASE = "/v1/tenants/{tenant_id}/sources/{source_id}"
_TEXT = r"^[^\x00]*$"


def _detail(row: dict[str, Any], forwards: list[dict[str, Any]]) -> ReceivedEventDetail:
    body: bytes = row.pop("body")
    try:
        text, encoding = body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    return ReceivedEventDetail(
        **row,
        body=text,
        body_encoding=encoding,
        forwards=[
            ForwardPublic(**{k: v for k, v in f.items() if k not in ("tenant_id", "event_id")})
            for f in forwards
        ],
    )


@router.get(_BASE + "/events", summary="List received events, newest first")
async def list_events(
    source_id: SourceIdPath,
    scope: TenantDep,
    runtime: RuntimeDep,
    page: PageDep,
    status: Annotated[Literal["accepted", "duplicate", "rejected"] | None, Query()] = None,
    processing_status: Annotated[
        Literal["pending", "processed", "forwarding", "retrying", "failed", "skipped"] | None,
        Query(),
    ] = None,
    event_type: Annotated[str | None, Query(max_length=200, pattern=_TEXT)] = None,
    delivery_id: Annotated[str | None, Query(max_length=200, pattern=_TEXT)] = None,
    since: Annotated[datetime | None, Query(description="received at or after")] = None,
    until: Annotated[datetime | None, Query(description="received before")] = None,
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
) -> ListResponse[ReceivedEventSummary]:
    filters = events_log.EventFilters(
        status=status,
        processing_status=processing_status,
        event_type=event_type,
        delivery_id=delivery_id,
        since=aware(since, "since"),
        until=aware(until, "until"),
    )
    async with runtime.db.transaction() as conn:
        await require_source(conn, scope.tenant_id, source_id)
        rows = await events_log.list_events(
            conn,
            scope.tenant_id,
            source_id,
            filters,
            after=page.after,
            limit=page.limit + 1,
            newest_first=order == "desc",
        )
    items, cursor = paginate(rows, page)
    return ListResponse(data=[ReceivedEventSummary(**row) for row in items], next_cursor=cursor)


@router.get(_BASE + "/events/{event_id}", summary="Get a received event with headers and body")
async def get_event(
    source_id: SourceIdPath, event_id: EventIdPath, scope: TenantDep, runtime: RuntimeDep
) -> ReceivedEventDetail:
    async with runtime.db.transaction() as conn:
        row = await events_log.get_event(conn, scope.tenant_id, source_id, event_id)
        if row is None:
            raise Problem.not_found("event", event_id)
        forwards = await events_log.list_forwards(conn, event_id)
    return _detail(row, forwards)


@router.post(
    _BASE + "/events/{event_id}/replay",
    status_code=202,
    summary="Process an event again (emit, route, forward)",
)
async def replay_event(
    source_id: SourceIdPath, event_id: EventIdPath, scope: TenantDep, runtime: RuntimeDep
) -> ReplayAccepted:
    async with runtime.db.transaction() as conn:
        row = await events_log.get_event(conn, scope.tenant_id, source_id, event_id)
        if row is None:
            raise Problem.not_found("event", event_id)
        if row["status"] != "accepted":
            raise Problem(
                409,
                "a rejected request cannot be replayed: it was never verified",
                slug="not-replayable",
            )
        replay, job_id = await events_log.replay_event(conn, runtime.queue, row)
        await record_action(
            conn,
            scope.principal,
            "inbound_event.replayed",
            tenant_id=scope.tenant_id,
            target=event_id,
            details={"replay": replay, "source_id": source_id},
        )
    return ReplayAccepted(event_id=event_id, replay=replay, job_id=job_id)


@router.post(
    _BASE + "/replay",
    status_code=202,
    summary="Replay every accepted event received in a time range",
)
async def replay_range(
    source_id: SourceIdPath, body: RangeReplay, scope: TenantDep, runtime: RuntimeDep
) -> RangeReplayed:
    since = aware(body.since, "since")
    until = aware(body.until, "until")
    if since is None:
        raise Problem(422, "since: required", slug="validation-error")
    if until is not None and until <= since:
        raise Problem(422, "until: must be after since", slug="validation-error")
    async with runtime.db.transaction() as conn:
        await require_source(conn, scope.tenant_id, source_id)
        count, more = await events_log.replay_range(
            conn, runtime.queue, scope.tenant_id, source_id, since, until
        )
        await record_action(
            conn,
            scope.principal,
            "source.replayed",
            tenant_id=scope.tenant_id,
            target=source_id,
            details={
                "since": since.isoformat(),
                "until": until.isoformat() if until else None,
                "replayed": count,
            },
        )
    return RangeReplayed(replayed=count, more=more)
