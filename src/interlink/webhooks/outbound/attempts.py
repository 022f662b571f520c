"""The attempts log and the operations on it: listing, resend and recover."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.queue.jobs import JobQueue
from interlink.store.types import utcnow
from interlink.webhooks.outbound.ordering import JOB_MAX_ATTEMPTS, claim_head, delivery_job
from interlink.webhooks.outbound.tables import outbound_attempts, outbound_deliveries

__all__ = ["AttemptFilters", "list_attempts", "public_attempt", "recover_endpoint", "resend"]

RECOVER_LIMIT = 10_000


@dataclass(frozen=True)
class AttemptFilters:
    """Narrow an attempts listing."""

    message_id: str | None = None
    endpoint_id: str | None = None
    status: str | None = None
    event_type: str | None = None
    since: datetime | None = None


async def list_attempts(
    conn: AsyncConnection,
    tenant_id: str | None,
    filters: AttemptFilters,
    *,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Attempts of the tenant (every tenant's for None), oldest first (ids sort by time)."""
    table = outbound_attempts
    query = select(table).order_by(table.c.id).limit(limit)
    if tenant_id is not None:
        query = query.where(table.c.tenant_id == tenant_id)
    for column, value in (
        (table.c.message_id, filters.message_id),
        (table.c.endpoint_id, filters.endpoint_id),
        (table.c.status, filters.status),
        (table.c.event_type, filters.event_type),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(table.c.created_at >= filters.since)
    if after:
        query = query.where(table.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


def public_attempt(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id", "message_id", "endpoint_id", "event_type", "status", "trigger", "url",
        "response_status_code", "response_headers", "response_body", "error_class", "error",
        "duration_ms", "created_at",
    )  # fmt: skip
    return {key: row[key] for key in keys}


async def _make_ready(conn: AsyncConnection, queue: JobQueue, delivery: dict[str, Any]) -> None:
    if delivery["ordering_key"] is not None and not await claim_head(
        conn, delivery["endpoint_id"], delivery["ordering_key"], delivery["id"]
    ):
        return  # waits for its turn in the key
    await queue.enqueue_many(
        conn,
        [
            delivery_job(
                delivery["id"],
                delivery["generation"],
                delivery["tenant_id"],
                delivery["endpoint_id"],
            )
        ],
        max_attempts=JOB_MAX_ATTEMPTS,
    )


async def resend(
    conn: AsyncConnection,
    queue: JobQueue,
    *,
    tenant_id: str,
    message: dict[str, Any],
    endpoint_id: str,
) -> dict[str, Any]:
    """Deliver ``message`` to the endpoint again with a fresh schedule (a new generation).

    An older job of the delivery, if any, finds its generation superseded and does nothing.
    """
    table = outbound_deliveries
    now = utcnow()
    query = select(table).where(
        table.c.message_id == message["id"], table.c.endpoint_id == endpoint_id
    )
    found = (await conn.execute(query.with_for_update())).mappings().first()
    if found is None:
        delivery: dict[str, Any] = {
            "id": new_id("dlv"),
            "tenant_id": tenant_id,
            "message_id": message["id"],
            "endpoint_id": endpoint_id,
            "status": "pending",
            "attempts": 0,
            "round_attempts": 0,
            "generation": 0,
            "next_attempt_at": now,
            "ordering_key": None,
            "order_seq": None,
            "created_at": now,
            "updated_at": now,
        }
        await conn.execute(table.insert().values(**delivery))
    else:
        delivery = dict(found)
        delivery.update(status="pending", round_attempts=0, generation=found["generation"] + 1)
        await conn.execute(
            update(table)
            .where(table.c.id == found["id"])
            .values(
                status="pending",
                round_attempts=0,
                generation=delivery["generation"],
                next_attempt_at=now,
                updated_at=now,
            )
        )
    await _make_ready(conn, queue, delivery)
    return delivery


async def recover_endpoint(
    conn: AsyncConnection, queue: JobQueue, tenant_id: str, endpoint_id: str, since: datetime
) -> int:
    """Resend every delivery to the endpoint that failed since ``since``; returns how many."""
    table = outbound_deliveries
    failed = (
        await conn.execute(
            select(table.c.message_id)
            .where(
                table.c.endpoint_id == endpoint_id,
                table.c.status == "failed",
                table.c.updated_at >= since,
            )
            .order_by(table.c.created_at)
            .limit(RECOVER_LIMIT)
        )
    ).all()
    for (message_id,) in failed:
        await resend(
            conn, queue, tenant_id=tenant_id, message={"id": message_id}, endpoint_id=endpoint_id
        )
    return len(failed)
