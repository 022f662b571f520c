"""The ``inbound.process`` jobs: route to destinations, trigger syncs, emit replays.

The writer emits a receipt's ``webhook.received`` in the transaction that stores it, and enqueues
a job only when the source has destinations or belongs to a connection; a replay is always a job,
which emits the event again (with its ``replay`` number) and routes it through today's rules.

Jobs are handled in batches (:class:`interlink.queue.BatchHandler`): one transaction reads the
batch's events with their sources, then their destinations (two queries), writes the forwards
and their jobs, emits the replays' events, updates the events and marks the jobs done. So the
work commits exactly once per job (once per replay, each replay being its own job), and a
crash before the commit reruns the batch.

Should the batch fail for another reason than the store, it runs again with a savepoint per job,
so that one failing job (a sync trigger raising, say) is retried on its own while the others
complete; the failure is recorded on the event in that same transaction.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.queue import (
    BatchContext,
    BatchHandler,
    Job,
    LeaseLost,
    PermanentJobError,
    RetryJob,
)
from interlink.queue.worker import backoff_delay
from interlink.store.database import StoreUnavailable
from interlink.store.types import utcnow
from interlink.webhooks.inbound.emitting import emit_all, received_event_data
from interlink.webhooks.inbound.forwarding import FORWARD_JOB
from interlink.webhooks.inbound.hooks import ReceivedWebhook, sync_triggers
from interlink.webhooks.inbound.payloads import decode_payload
from interlink.webhooks.inbound.routing import route_matches
from interlink.webhooks.inbound.tables import (
    inbound_destinations,
    inbound_events,
    inbound_forwards,
    inbound_sources,
)

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["BATCH_SIZE", "process_handler"]

BATCH_SIZE = 100
_EVENT_COLUMNS = (
    inbound_events.c.id,
    inbound_events.c.tenant_id,
    inbound_events.c.source_id,
    inbound_events.c.status,
    inbound_events.c.event_type,
    inbound_events.c.delivery_id,
    inbound_events.c.content_type,
    inbound_events.c.body,
    inbound_events.c.received_at,
    inbound_sources.c.provider,
    inbound_sources.c.connection_id,
)
# Built once: building a statement per call costs about as much as running it.
_EVENTS = (
    select(*_EVENT_COLUMNS)
    .join(inbound_sources, inbound_sources.c.id == inbound_events.c.source_id)
    .where(inbound_events.c.id.in_(bindparam("ids", expanding=True)))
)
_DESTINATIONS = (
    select(inbound_destinations)
    .where(inbound_destinations.c.source_id.in_(bindparam("sources", expanding=True)))
    .order_by(inbound_destinations.c.id)
)
_FINISH = (
    update(inbound_events)
    .where(inbound_events.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        processing_status=bindparam("outcome"),
        attempts=inbound_events.c.attempts + bindparam("jobs"),
        processed_at=bindparam("now"),
        last_error=None,
    )
)


class _Batch:
    """One transaction's worth of processing: reads once, then handles job after job."""

    def __init__(self, runtime: Runtime, conn: AsyncConnection, jobs: list[Job]) -> None:
        self.runtime = runtime
        self.conn = conn
        self.jobs = jobs
        self.events: dict[str, Any] = {}
        self.destinations: dict[str, list[dict[str, Any]]] = {}
        self.processed: Counter[str] = Counter()
        self.forwarding: Counter[str] = Counter()
        self.received: list[tuple[dict[str, Any], str | None, str | None]] = []

    async def load(self) -> None:
        ids = sorted({str(job.payload.get("event_id", "")) for job in self.jobs})
        found = await self.conn.execute(_EVENTS, {"ids": ids})
        self.events = {row["id"]: row for row in found.mappings()}
        sources = sorted({event["source_id"] for event in self.events.values()})
        if not sources:
            return
        rows = await self.conn.execute(_DESTINATIONS, {"sources": sources})
        for row in rows.mappings():
            self.destinations.setdefault(row["source_id"], []).append(dict(row))

    async def process(self, job: Job) -> None:
        event = self.events.get(str(job.payload.get("event_id", "")))
        if event is None or event["status"] != "accepted":
            return  # deleted with its source, or nothing to process
        replay = int(job.payload.get("replay", 0))
        source = {
            "id": event["source_id"],
            "provider": event["provider"],
            "connection_id": event["connection_id"],
        }
        payload = decode_payload(event["provider"], event["content_type"], event["body"])
        forwards = await self._route(event, payload, replay)
        if event["connection_id"]:
            received = ReceivedWebhook(
                event_id=event["id"],
                tenant_id=event["tenant_id"],
                source_id=event["source_id"],
                connection_id=event["connection_id"],
                provider=event["provider"],
                event_type=event["event_type"],
                delivery_id=event["delivery_id"],
                payload=payload,
                replay=replay,
            )
            for trigger in sync_triggers(self.runtime):
                await trigger.trigger(self.conn, received)
        # Recorded last, so that a job failing above leaves no trace in the batch. A receipt's
        # event was emitted by the writer, in the transaction that stored it.
        if not job.payload.get("emitted"):
            data = received_event_data(event, source, payload, replay)
            self.received.append((data, event["tenant_id"], event["source_id"]))
        (self.forwarding if forwards else self.processed)[event["id"]] += 1

    async def _route(self, event: Any, payload: Any, replay: int) -> int:
        destinations = self.destinations.get(event["source_id"], ())
        matching = [d for d in destinations if route_matches(d, event["event_type"], payload)]
        if not matching:
            return 0
        now = utcnow()
        rows = [
            {
                "id": new_id("fwd"),
                "tenant_id": event["tenant_id"],
                "event_id": event["id"],
                "destination_id": destination["id"],
                "replay": replay,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for destination in matching
        ]
        await self.conn.execute(inbound_forwards.insert(), rows)
        # Forward rows and their jobs commit together with this job, so no idempotency key
        # is needed (and without one the jobs are written in one statement).
        jobs = [(FORWARD_JOB, {"forward_id": row["id"]}, event["tenant_id"], None) for row in rows]
        retries = len(self.runtime.settings.retry_delays) + 1
        await self.runtime.queue.enqueue_many(self.conn, jobs, max_attempts=retries)
        return len(rows)

    async def emit(self) -> None:
        """Emit the ``webhook.received`` events of the jobs processed since the last call."""
        received, self.received = self.received, []
        await emit_all(self.runtime.outbox, self.conn, "webhook.received", received)

    async def finish(self) -> None:
        """Record the outcome on the events: one update per status and number of jobs."""
        await self.emit()
        now = utcnow()
        groups: dict[tuple[str, int], list[str]] = {}
        for status, counts in (("processed", self.processed), ("forwarding", self.forwarding)):
            for event_id, jobs in counts.items():
                groups.setdefault((status, jobs), []).append(event_id)
        for (status, jobs), ids in sorted(groups.items()):
            values = {"ids": sorted(ids), "outcome": status, "jobs": jobs, "now": now}
            await self.conn.execute(_FINISH, values)


async def _record_failure(
    conn: AsyncConnection, job: Job, error: Exception, *, final: bool = False
) -> str:
    reason = f"{type(error).__name__}: {error}"
    final = final or job.attempts >= job.max_attempts
    await conn.execute(
        update(inbound_events)
        .where(inbound_events.c.id == str(job.payload.get("event_id", "")))
        .values(
            processing_status="failed" if final else "retrying",
            attempts=inbound_events.c.attempts + 1,
            last_error=reason[:2000],
        )
    )
    return reason


def process_handler(runtime: Runtime, max_size: int = BATCH_SIZE) -> BatchHandler:
    """Build the ``inbound.process`` batch handler for ``runtime``."""

    async def run(jobs: list[Job], ctx: BatchContext, *, isolate: bool) -> None:
        async with ctx.transaction() as conn:
            batch = _Batch(runtime, conn, jobs)
            await batch.load()
            for job in jobs:
                if not isolate:
                    await batch.process(job)
                    continue
                try:
                    async with conn.begin_nested():
                        await batch.process(job)
                        await batch.emit()
                except (StoreUnavailable, LeaseLost):
                    raise
                except PermanentJobError as error:
                    ctx.bury(job, await _record_failure(conn, job, error, final=True))
                except RetryJob as error:
                    ctx.retry(job, await _record_failure(conn, job, error), error.delay)
                except Exception as error:
                    reason = await _record_failure(conn, job, error)
                    ctx.retry(job, reason, backoff_delay(job.attempts))
            await batch.finish()

    async def handle(jobs: list[Job], ctx: BatchContext) -> None:
        try:
            await run(jobs, ctx, isolate=False)
        except (StoreUnavailable, LeaseLost):
            raise
        except Exception:
            # Some job failed and rolled the batch back: again, a savepoint per job.
            await run(jobs, ctx, isolate=True)

    return BatchHandler(handle, max_size=max_size)
