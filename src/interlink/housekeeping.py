"""Housekeeping: the hourly ``core.purge`` job deletes what the core keeps for a while only.

- succeeded jobs after ``INTERLINK_JOB_RETENTION_SECONDS`` (queued, running and dead ones stay);
- relayed events after ``INTERLINK_EVENT_RETENTION_SECONDS`` (one not yet relayed stays);
- audit-log entries after ``INTERLINK_AUDIT_RETENTION_SECONDS`` (``0`` keeps them for good).

It is a job, not a loop in every worker process: each worker process asks for the job of the
current hour when it starts, and each run asks for the next hour's before it purges; the
idempotency key names the hour, so it runs once an hour per deployment however many worker
processes there are. Each purge deletes a batch of rows per transaction (``store.retention``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import true

from interlink.ids import id_floor
from interlink.store.database import Database
from interlink.store.retention import BATCH, delete_in_batches
from interlink.store.schema import audit_log
from interlink.store.types import utcnow

if TYPE_CHECKING:
    from interlink.queue.worker import HourlyWork
    from interlink.runtime import Runtime

__all__ = ["PURGE_JOB", "purge_audit_log", "purge_work"]

PURGE_JOB = "core.purge"

log = structlog.get_logger("interlink.housekeeping")


async def purge_audit_log(db: Database, older_than: timedelta, *, batch: int = BATCH) -> int:
    """Delete the audit-log entries made more than ``older_than`` ago, ``batch`` per
    transaction; returns how many. Their ids begin with the millisecond they were made in."""
    return await delete_in_batches(
        db, audit_log, key=audit_log.c.id, below=id_floor("aud", utcnow() - older_than),
        condition=true(), batch=batch,
    )  # fmt: skip


def purge_work(runtime: Runtime) -> HourlyWork:
    """The work of ``core.purge``, run once an hour."""
    settings = runtime.settings

    async def purge() -> None:
        audit = settings.audit_retention_seconds
        purged = {
            "jobs": await runtime.queue.purge_finished(
                timedelta(seconds=settings.job_retention_seconds)
            ),
            "events": await runtime.outbox.purge(
                timedelta(seconds=settings.event_retention_seconds)
            ),
            "audit_entries": (
                await purge_audit_log(runtime.db, timedelta(seconds=audit)) if audit else 0
            ),
        }
        if any(purged.values()):
            log.info("purged what is past its retention", **purged)

    return purge
