"""Ordered deliveries: per (endpoint, ordering key), one delivery at a time, in sequence.

Only the head of a key has a job. Writers serialise on the key's ``outbound_order_keys`` row
(an upsert locks it), and a head's successor is enqueued in the same transaction that records
the head as succeeded or finally failed, so a crash can neither lose nor reorder one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.queue.jobs import Job, JobQueue
from interlink.webhooks.outbound.tables import outbound_deliveries, outbound_order_keys

__all__ = [
    "DELIVER_JOB",
    "JOB_MAX_ATTEMPTS",
    "advance_key",
    "delivery_job",
    "job_endpoint",
    "join_key",
]

DELIVER_JOB = "outbound.deliver"
# The delivery's own schedule decides when it has failed; the job must never run out first.
JOB_MAX_ATTEMPTS = 1000


def delivery_job(
    delivery_id: str, generation: int, tenant_id: str, endpoint_id: str
) -> tuple[str, dict[str, Any], str | None, str | None]:
    """The ``enqueue_many`` item that delivers ``delivery_id`` (this generation of it).

    The endpoint is in the payload so that the worker batches each endpoint's jobs apart
    (:func:`job_endpoint`).
    """
    payload = {"delivery_id": delivery_id, "generation": generation, "endpoint_id": endpoint_id}
    return (DELIVER_JOB, payload, tenant_id, None)


def job_endpoint(job: Job) -> str | None:
    """The batch group of a delivery job: its endpoint (None in jobs queued by older versions,
    which are batched together as before)."""
    endpoint: str | None = job.payload.get("endpoint_id")
    return endpoint


async def join_key(
    conn: AsyncConnection, endpoint_id: str, ordering_key: str, delivery_id: str, *, pg: bool
) -> tuple[int, bool]:
    """Take the next sequence number of the key; returns it and whether it is the head now."""
    insert = postgresql.insert if pg else sqlite.insert
    table = outbound_order_keys
    stmt = (
        insert(table)
        .values(
            endpoint_id=endpoint_id,
            ordering_key=ordering_key,
            last_seq=1,
            head_delivery_id=delivery_id,
        )
        .on_conflict_do_update(
            index_elements=[table.c.endpoint_id, table.c.ordering_key],
            set_={"last_seq": table.c.last_seq + 1},
        )
        .returning(table.c.last_seq, table.c.head_delivery_id)
    )
    seq, head = (await conn.execute(stmt)).one()
    if head is None:
        await _set_head(conn, endpoint_id, ordering_key, delivery_id)
        return int(seq), True
    return int(seq), head == delivery_id


async def claim_head(
    conn: AsyncConnection, endpoint_id: str, ordering_key: str, delivery_id: str
) -> bool:
    """Make ``delivery_id`` the head if the key has none (a resend); True when it is now."""
    result = await conn.execute(
        update(outbound_order_keys)
        .where(
            outbound_order_keys.c.endpoint_id == endpoint_id,
            outbound_order_keys.c.ordering_key == ordering_key,
            outbound_order_keys.c.head_delivery_id.is_(None),
        )
        .values(head_delivery_id=delivery_id)
    )
    if result.rowcount:
        return True
    head = await conn.scalar(
        select(outbound_order_keys.c.head_delivery_id).where(
            outbound_order_keys.c.endpoint_id == endpoint_id,
            outbound_order_keys.c.ordering_key == ordering_key,
        )
    )
    return bool(head == delivery_id)


async def _set_head(
    conn: AsyncConnection, endpoint_id: str, ordering_key: str, delivery_id: str | None
) -> None:
    await conn.execute(
        update(outbound_order_keys)
        .where(
            outbound_order_keys.c.endpoint_id == endpoint_id,
            outbound_order_keys.c.ordering_key == ordering_key,
        )
        .values(head_delivery_id=delivery_id)
    )


async def advance_key(
    conn: AsyncConnection,
    queue: JobQueue,
    *,
    endpoint_id: str,
    ordering_key: str,
    finished_delivery_id: str,
    generation: int,
    tenant_id: str,
) -> str | None:
    """After the head finished (succeeded or failed for good), enqueue the next in line.

    Call in the transaction that records the head's final status. Returns the new head.
    An outcome of an older ``generation`` (the delivery was resent while that attempt was in
    flight) changes nothing: the key waits for the resend's own outcome.
    """
    head = await conn.scalar(
        select(outbound_order_keys.c.head_delivery_id)
        .where(
            outbound_order_keys.c.endpoint_id == endpoint_id,
            outbound_order_keys.c.ordering_key == ordering_key,
        )
        .with_for_update()
    )
    if head != finished_delivery_id:
        return None
    current = await conn.scalar(
        select(outbound_deliveries.c.generation).where(
            outbound_deliveries.c.id == finished_delivery_id
        )
    )
    if current != generation:
        return None
    following = (
        await conn.execute(
            select(outbound_deliveries.c.id, outbound_deliveries.c.generation)
            .where(
                outbound_deliveries.c.endpoint_id == endpoint_id,
                outbound_deliveries.c.ordering_key == ordering_key,
                outbound_deliveries.c.status == "pending",
                outbound_deliveries.c.id != finished_delivery_id,
            )
            .order_by(outbound_deliveries.c.order_seq)
            .limit(1)
        )
    ).first()
    next_id = following[0] if following else None
    await _set_head(conn, endpoint_id, ordering_key, next_id)
    if following is not None:
        await queue.enqueue_many(
            conn,
            [delivery_job(following[0], following[1], tenant_id, endpoint_id)],
            max_attempts=JOB_MAX_ATTEMPTS,
        )
    return next_id
