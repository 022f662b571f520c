"""Payload retention: an hourly ``outbound.purge`` job drops old payloads, keeps the attempts log.

The job reschedules itself (one per hour, deduplicated by an idempotency key naming the hour),
so it runs once per deployment however many workers there are. It changes 500 messages per
transaction, found through partial indexes of what is left to do (``tables``), so that an hour
of messages at a high rate does not hold the store's write lock for seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.queue.jobs import Job, JobQueue
from interlink.queue.worker import JobContext, JobHandler
from interlink.store.database import Database
from interlink.store.retention import BATCH, update_in_batches
from interlink.store.types import utcnow
from interlink.webhooks.outbound.state import outbound_state
from interlink.webhooks.outbound.tables import outbound_messages

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["PURGE_JOB", "purge_handler", "purge_payloads", "schedule_purge"]

PURGE_JOB = "outbound.purge"


async def schedule_purge(conn: AsyncConnection, queue: JobQueue, at: datetime) -> None:
    """Enqueue the purge of the hour containing ``at`` (once, whoever asks)."""
    await queue.enqueue_hourly(conn, PURGE_JOB, at)


async def purge_payloads(
    db: Database,
    *,
    payload_retention: timedelta,
    idempotency_window: timedelta,
    batch: int = BATCH,
) -> int:
    """Drop payloads older than the retention and free idempotency keys past their window, a
    batch per transaction (``store.retention``); returns how many payloads were dropped."""
    now = utcnow()
    table = outbound_messages.c
    purged = await update_in_batches(
        db,
        outbound_messages,
        (table.payload_purged_at.is_(None)) & (table.created_at < now - payload_retention),
        order_by=table.created_at,
        values={"payload": None, "payload_purged_at": now, "idempotency_key": None},
        batch=batch,
    )
    await update_in_batches(
        db,
        outbound_messages,
        (table.idempotency_key.is_not(None)) & (table.created_at < now - idempotency_window),
        order_by=table.created_at,
        values={"idempotency_key": None},
        batch=batch,
    )
    return purged


def purge_handler(runtime: Runtime) -> JobHandler:
    """The handler of ``outbound.purge``."""

    async def handle(job: Job, ctx: JobContext) -> None:
        config = outbound_state(runtime).config
        await purge_payloads(
            runtime.db,
            payload_retention=config.payload_retention,
            idempotency_window=config.idempotency_window,
        )
        async with ctx.transaction() as conn:
            await schedule_purge(conn, runtime.queue, utcnow() + timedelta(hours=1))

    return handle
