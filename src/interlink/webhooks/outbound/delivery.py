"""The ``outbound.deliver`` batch handler: claim many deliveries, send them concurrently, record
every attempt and outcome in one transaction.

Per batch: one query loads the deliveries with their messages and endpoints; endpoints are
compiled once per version (signer precomputed); bodies are serialised once per message
(``{"type", "timestamp", "data"}``, the same bytes on every retry); the POSTs share one
kept-alive connection pool; the :class:`Recorder` writes attempts, delivery states, endpoint
health, events and ordering successors in the transaction that completes the jobs.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from interlink import exact_json
from interlink.queue.jobs import Job
from interlink.queue.worker import BatchContext, BatchHandler
from interlink.store.types import utcnow
from interlink.webhooks.outbound.ordering import job_endpoint
from interlink.webhooks.outbound.ratelimit import take_slots
from interlink.webhooks.outbound.recording import Outcome, plan_outcomes
from interlink.webhooks.outbound.sender import compiled_endpoint, send_attempt
from interlink.webhooks.outbound.state import outbound_state
from interlink.webhooks.outbound.tables import (
    ENDPOINT_SEND_COLUMNS,
    outbound_deliveries,
    outbound_endpoints,
    outbound_messages,
)

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["deliver_handler", "wire_body"]

_E = outbound_endpoints.c
_COLUMNS = (
    outbound_deliveries.c.id,
    outbound_deliveries.c.status,
    outbound_deliveries.c.generation,
    outbound_deliveries.c.round_attempts,
    outbound_deliveries.c.attempts,
    outbound_deliveries.c.ordering_key,
    outbound_deliveries.c.tenant_id,
    outbound_messages.c.id.label("message_id"),
    outbound_messages.c.event_type,
    outbound_messages.c.payload,
    outbound_messages.c.created_at.label("message_created_at"),
    _E.id.label("endpoint_id"),
)


def wire_body(event_type: str, created_at: Any, payload: Any) -> bytes:
    """The exact bytes sent: ``{"type", "timestamp", "data"}``, the same on every retry."""
    timestamp = created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return exact_json.dumps({"type": event_type, "timestamp": timestamp, "data": payload})


# Built once: building a statement per call costs about as much as running it.
_DELIVERIES = (
    select(*_COLUMNS)
    .select_from(
        outbound_deliveries.join(
            outbound_messages, outbound_messages.c.id == outbound_deliveries.c.message_id
        ).join(outbound_endpoints, _E.id == outbound_deliveries.c.endpoint_id)
    )
    .where(outbound_deliveries.c.id.in_(bindparam("ids", expanding=True)))
)
_ENDPOINTS = select(*ENDPOINT_SEND_COLUMNS).where(_E.id.in_(bindparam("ids", expanding=True)))


async def _load(runtime: Runtime, ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    async with runtime.db.connection() as conn:
        rows = {row.id: row for row in (await conn.execute(_DELIVERIES, {"ids": ids})).all()}
        endpoint_ids = sorted({row.endpoint_id for row in rows.values()})
        found = await conn.execute(_ENDPOINTS, {"ids": endpoint_ids})
        endpoints = {row.id: row for row in found.all()}
        await conn.rollback()
    return rows, endpoints


def deliver_handler(runtime: Runtime) -> BatchHandler:
    """The batch handler for ``outbound.deliver`` jobs."""

    async def handle(jobs: list[Job], ctx: BatchContext) -> None:
        state = outbound_state(runtime)
        unknown = [job.payload["delivery_id"] for job in jobs if job.memo is None]
        rows, endpoints = await _load(runtime, unknown) if unknown else ({}, {})
        for job in jobs:
            if job.memo is not None:  # handed over by the writer with what _load would read
                row, endpoint = job.memo
                rows[row.id], endpoints[endpoint.id] = row, endpoint
        now = utcnow()
        outcomes: list[Outcome] = []
        sendable: dict[str, list[tuple[Job, Any]]] = defaultdict(list)
        for job in jobs:
            row = rows.get(job.payload["delivery_id"])
            if (
                row is None
                or row.status != "pending"
                or row.generation != job.payload.get("generation", 0)
            ):
                continue  # deleted, finished or superseded by a resend: nothing to do
            endpoint = endpoints[row.endpoint_id]
            if endpoint.disabled:
                outcomes.append(Outcome(job, row, endpoint, None, "endpoint is disabled"))
            elif row.payload is None:
                outcomes.append(Outcome(job, row, endpoint, None, "payload was purged"))
            elif (
                row.round_attempts == 0
                and endpoint.next_attempt_not_before is not None
                and endpoint.next_attempt_not_before > now
            ):
                wait = (endpoint.next_attempt_not_before - now).total_seconds()
                ctx.retry(job, "endpoint is backing off after failures", wait)
            else:
                sendable[endpoint.id].append((job, row))
        for endpoint_id, items in list(sendable.items()):
            rate = endpoints[endpoint_id].rate_limit
            if not rate:
                continue
            waits = await take_slots(runtime.db, endpoint_id, rate, len(items))
            sendable[endpoint_id] = [
                item for item, wait in zip(items, waits, strict=True) if not wait
            ]
            for (job, _), wait in zip(items, waits, strict=True):
                if wait:
                    ctx.retry(job, "endpoint rate limit", wait)
        bodies: dict[str, bytes] = {}
        tasks = []
        for endpoint_id, items in sendable.items():
            compiled = compiled_endpoint(state, runtime.vault, endpoints[endpoint_id])
            for job, row in items:
                body = bodies.get(row.message_id)
                if body is None:
                    body = bodies[row.message_id] = wire_body(
                        row.event_type, row.message_created_at, row.payload
                    )
                tasks.append(
                    (job, row, compiled, send_attempt(state, compiled, row.message_id, body))
                )
        results = await asyncio.gather(*(task[3] for task in tasks))
        # Sent: while the group commit writes the outcomes, new deliveries may start.
        ctx.release_slots()
        for (job, row, compiled, _), result in zip(tasks, results, strict=True):
            outcomes.append(Outcome(job, row, endpoints[row.endpoint_id], result, None, compiled))
        plan = plan_outcomes(state, ctx, outcomes)
        if outcomes:
            await state.recorder.record(ctx, plan)

    return BatchHandler(handle, max_size=100, group=job_endpoint)
