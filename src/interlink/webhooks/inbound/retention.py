"""Retention of the received-events log: an hourly ``inbound.purge`` job deletes what is older
than ``INTERLINK_INBOUND_RETENTION_SECONDS`` (30 days by default), forwards included.

An event is deleted only once nothing will happen to it any more: its processing is over
(``processed``, ``forwarding``, ``failed`` or ``skipped``, not ``pending`` or ``retrying``) and
none of its forwards is still to be delivered. Its forwards go with it (the foreign key
cascades). Deduplication holds as long as the event is kept: a provider that delivers the same
event again after the retention finds nothing to match and the event is stored anew.

The job reschedules itself (one per hour, deduplicated by an idempotency key naming the hour),
so it runs once per deployment however many workers there are; it deletes a batch per
transaction (``store.retention``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, exists, select

from interlink.ids import id_floor
from interlink.store.database import Database
from interlink.store.retention import BATCH, delete_in_batches
from interlink.store.types import utcnow
from interlink.webhooks.inbound.tables import inbound_events, inbound_forwards

if TYPE_CHECKING:
    from interlink.queue.worker import HourlyWork
    from interlink.runtime import Runtime

__all__ = ["PURGE_JOB", "purge_events", "purge_work"]

PURGE_JOB = "inbound.purge"
_UNFINISHED_PROCESSING = ("pending", "retrying")
_FINISHED_FORWARDS = ("succeeded", "dead", "cancelled")


def _finished(cutoff: datetime) -> ColumnElement[bool]:
    """Events received before ``cutoff`` that nothing will happen to any more."""
    events, forwards = inbound_events.c, inbound_forwards.c
    forward_pending = exists(
        select(forwards.id).where(
            forwards.event_id == events.id, forwards.status.not_in(_FINISHED_FORWARDS)
        )
    )
    return (
        (events.received_at < cutoff)
        & events.processing_status.not_in(_UNFINISHED_PROCESSING)
        & ~forward_pending
    )


async def purge_events(db: Database, retention: timedelta, *, batch: int = BATCH) -> int:
    """Delete the events (and their forwards) received more than ``retention`` ago that are
    done with; returns how many events."""
    cutoff = utcnow() - retention
    return await delete_in_batches(
        db,
        inbound_events,
        key=inbound_events.c.id,
        below=id_floor("evt", cutoff),  # a range of the primary key (store.retention)
        condition=_finished(cutoff),
        batch=batch,
    )


def purge_work(runtime: Runtime) -> HourlyWork:
    """The work of ``inbound.purge``, run once an hour."""
    retention = timedelta(seconds=runtime.settings.inbound_retention_seconds)

    async def purge() -> None:
        await purge_events(runtime.db, retention)

    return purge
