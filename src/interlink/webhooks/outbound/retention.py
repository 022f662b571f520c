"""Retention: an hourly ``outbound.purge`` job drops old payloads, keeps the attempts log for
longer, and in the end deletes old messages whole.

Payloads go after ``INTERLINK_PAYLOAD_RETENTION_SECONDS`` (the message and its attempts log
stay); messages, with their deliveries and attempts, after ``INTERLINK_MESSAGE_RETENTION_SECONDS``
(never before their payloads), unless a delivery of theirs is still pending. The job reschedules
itself (one per hour, deduplicated by an idempotency key naming the hour), so it runs once per
deployment however many workers there are. It changes or deletes 500 rows per transaction
(``store.retention``), so that an hour of messages at a high rate does not hold the store's
write lock for seconds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import exists, true

from interlink.ids import id_floor
from interlink.store.database import Database
from interlink.store.retention import BATCH, delete_in_batches, update_in_batches
from interlink.store.types import utcnow
from interlink.webhooks.outbound.state import outbound_state
from interlink.webhooks.outbound.tables import (
    outbound_attempts,
    outbound_deliveries,
    outbound_messages,
)

if TYPE_CHECKING:
    from interlink.queue.worker import HourlyWork
    from interlink.runtime import Runtime

__all__ = ["PURGE_JOB", "purge_messages", "purge_payloads", "purge_work"]

PURGE_JOB = "outbound.purge"


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


async def purge_messages(db: Database, *, older_than: timedelta, batch: int = BATCH) -> int:
    """Delete the attempts made, and the messages accepted, more than ``older_than`` ago, a
    batch per transaction; a message goes with its deliveries (the foreign key cascades), and
    stays while one of them is pending. Returns how many messages were deleted.

    Both are found through their ids, which begin with the millisecond they were made in
    (``store.retention``): no index on a time column is needed."""
    cutoff = utcnow() - older_than
    await delete_in_batches(
        db, outbound_attempts, key=outbound_attempts.c.id, below=id_floor("att", cutoff),
        condition=true(), batch=batch,
    )  # fmt: skip
    deliveries = outbound_deliveries.c
    pending = exists().where(
        deliveries.message_id == outbound_messages.c.id, deliveries.status == "pending"
    )
    return await delete_in_batches(
        db, outbound_messages, key=outbound_messages.c.id, below=id_floor("msg", cutoff),
        condition=~pending, batch=batch,
    )  # fmt: skip


def purge_work(runtime: Runtime) -> HourlyWork:
    """The work of ``outbound.purge``, run once an hour."""

    async def purge() -> None:
        config = outbound_state(runtime).config
        await purge_payloads(
            runtime.db,
            payload_retention=config.payload_retention,
            idempotency_window=config.idempotency_window,
        )
        await purge_messages(runtime.db, older_than=config.message_retention)

    return purge
