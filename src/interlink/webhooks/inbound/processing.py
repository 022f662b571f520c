"""The ``inbound.process`` job: emit ``webhook.received``, route to destinations, trigger syncs.

Everything the job does is written in the job's completing transaction, so a crash before the
commit reruns the job and a crash after it never does: the event is processed exactly once per
receipt (and once per replay, each replay being its own job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.queue.jobs import Job
from interlink.queue.worker import JobContext, JobHandler
from interlink.store.types import utcnow
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

__all__ = ["process_handler", "received_event_data"]


def received_event_data(event: Any, source: Any, payload: Any, replay: int) -> dict[str, Any]:
    """The ``data`` of the ``webhook.received`` CloudEvent."""
    return {
        "received_event_id": event["id"],
        "source_id": source["id"],
        "provider": source["provider"],
        "event_type": event["event_type"],
        "delivery_id": event["delivery_id"],
        "connection_id": source["connection_id"],
        "received_at": event["received_at"].isoformat(),
        "replay": replay,
        "payload": payload,
    }


async def _route(
    runtime: Runtime, conn: AsyncConnection, event: Any, payload: Any, replay: int
) -> int:
    destinations = (
        (
            await conn.execute(
                select(inbound_destinations)
                .where(inbound_destinations.c.source_id == event["source_id"])
                .order_by(inbound_destinations.c.id)
            )
        )
        .mappings()
        .all()
    )
    matching = [
        dict(d) for d in destinations if route_matches(dict(d), event["event_type"], payload)
    ]
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
    await conn.execute(inbound_forwards.insert(), rows)
    jobs = [
        (FORWARD_JOB, {"forward_id": row["id"]}, event["tenant_id"], f"inbound-fwd:{row['id']}")
        for row in rows
    ]
    await runtime.queue.enqueue_many(
        conn, jobs, max_attempts=len(runtime.settings.retry_delays) + 1
    )
    return len(rows)


def process_handler(runtime: Runtime) -> JobHandler:
    """Build the ``inbound.process`` handler for ``runtime``."""

    async def process(job: Job, ctx: JobContext) -> None:
        event_id = str(job.payload.get("event_id", ""))
        replay = int(job.payload.get("replay", 0))
        try:
            async with ctx.transaction() as conn:
                await _process(conn, event_id, replay)
        except Exception as error:
            await _record_failure(event_id, job, error)
            raise

    async def _process(conn: AsyncConnection, event_id: str, replay: int) -> None:
        event = (
            (await conn.execute(select(inbound_events).where(inbound_events.c.id == event_id)))
            .mappings()
            .first()
        )
        if event is None or event["status"] != "accepted":
            return  # deleted with its source, or nothing to process
        source = (
            (
                await conn.execute(
                    select(inbound_sources).where(inbound_sources.c.id == event["source_id"])
                )
            )
            .mappings()
            .one()
        )
        payload = decode_payload(source["provider"], event["content_type"], event["body"])
        await runtime.outbox.emit(
            conn,
            "webhook.received",
            received_event_data(event, source, payload, replay),
            tenant_id=event["tenant_id"],
            component="webhooks",
            subject=event["source_id"],
        )
        forwards = await _route(runtime, conn, event, payload, replay)
        if source["connection_id"]:
            received = ReceivedWebhook(
                event_id=event["id"],
                tenant_id=event["tenant_id"],
                source_id=source["id"],
                connection_id=source["connection_id"],
                provider=source["provider"],
                event_type=event["event_type"],
                delivery_id=event["delivery_id"],
                payload=payload,
                replay=replay,
            )
            for trigger in sync_triggers(runtime):
                await trigger.trigger(conn, received)
        await conn.execute(
            update(inbound_events)
            .where(inbound_events.c.id == event_id)
            .values(
                processing_status="forwarding" if forwards else "processed",
                attempts=inbound_events.c.attempts + 1,
                processed_at=utcnow(),
                last_error=None,
            )
        )

    async def _record_failure(event_id: str, job: Job, error: Exception) -> None:
        final = job.attempts >= job.max_attempts
        try:
            async with runtime.db.transaction() as conn:
                await conn.execute(
                    update(inbound_events)
                    .where(inbound_events.c.id == event_id)
                    .values(
                        processing_status="failed" if final else "retrying",
                        attempts=inbound_events.c.attempts + 1,
                        last_error=f"{type(error).__name__}: {error}"[:2000],
                    )
                )
        except Exception:  # the job's own retry bookkeeping still happens in the worker
            return

    return process
