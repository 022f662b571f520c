"""The ``inbound.forward`` job: deliver a received event to one destination, signed.

The body is the provider's original bytes with its ``Content-Type``; Standard Webhooks headers
sign it with the destination's ``whsec_`` secret, ``webhook-id`` being the received event id
(identical on every retry and replay, so the receiver can deduplicate). A 2xx completes the
forward; anything else is retried on ``INTERLINK_RETRY_SCHEDULE`` and the forward is marked
``dead`` (and ``webhook.failed`` emitted) once attempts are spent or the failure is permanent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.egress import EgressError
from interlink.queue.jobs import Job
from interlink.queue.worker import JobContext, JobHandler, RetryJob
from interlink.store.types import utcnow
from interlink.webhooks.inbound.state import inbound_state
from interlink.webhooks.inbound.tables import (
    inbound_destinations,
    inbound_events,
    inbound_forwards,
    inbound_sources,
)
from interlink.webhooks.outbound.signing import WebhookSigner

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["FORWARD_JOB", "destination_secret_context", "forward_handler"]

FORWARD_JOB = "inbound.forward"


def destination_secret_context(destination_id: str) -> str:
    return f"inbound_destinations.secret:{destination_id}"


async def _load(conn: AsyncConnection, forward_id: str) -> dict[str, Any] | None:
    query = (
        select(
            inbound_forwards.c.id,
            inbound_forwards.c.replay,
            inbound_forwards.c.status,
            inbound_events.c.id.label("event_id"),
            inbound_events.c.body,
            inbound_events.c.content_type,
            inbound_events.c.event_type,
            inbound_events.c.tenant_id,
            inbound_sources.c.id.label("source_id"),
            inbound_sources.c.provider,
            inbound_destinations.c.id.label("destination_id"),
            inbound_destinations.c.url,
            inbound_destinations.c.secret,
            inbound_destinations.c.enabled,
        )
        .select_from(
            inbound_forwards.join(
                inbound_events, inbound_events.c.id == inbound_forwards.c.event_id
            )
            .join(inbound_sources, inbound_sources.c.id == inbound_events.c.source_id)
            .outerjoin(
                inbound_destinations,
                inbound_destinations.c.id == inbound_forwards.c.destination_id,
            )
        )
        .where(inbound_forwards.c.id == forward_id)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def _set(conn: AsyncConnection, forward_id: str, **values: Any) -> None:
    await conn.execute(
        update(inbound_forwards)
        .where(inbound_forwards.c.id == forward_id)
        .values(updated_at=utcnow(), **values)
    )


def forward_handler(runtime: Runtime) -> JobHandler:
    """Build the ``inbound.forward`` handler for ``runtime``."""
    delays = runtime.settings.retry_delays

    async def forward(job: Job, ctx: JobContext) -> None:
        forward_id = str(job.payload.get("forward_id", ""))
        async with runtime.db.transaction() as conn:
            found = await _load(conn, forward_id)
        if found is None or found["status"] in ("succeeded", "dead", "cancelled"):
            async with ctx.transaction():
                return
        if found["destination_id"] is None or not found["enabled"]:
            async with ctx.transaction() as conn:
                await _set(conn, forward_id, status="cancelled", last_error="destination removed")
            return
        status, error_class, error, retryable = await _deliver(found)
        if status is not None and 200 <= status < 300:
            async with ctx.transaction() as conn:
                await _set(
                    conn,
                    forward_id,
                    status="succeeded",
                    attempts=job.attempts,
                    response_status_code=status,
                    error_class=None,
                    last_error=None,
                )
            return
        outcome = {
            "attempts": job.attempts,
            "response_status_code": status,
            "error_class": error_class,
            "last_error": error[:2000],
        }
        if not retryable or job.attempts >= job.max_attempts:
            async with ctx.transaction() as conn:
                await _set(conn, forward_id, status="dead", **outcome)
                await runtime.outbox.emit(
                    conn,
                    "webhook.failed",
                    {
                        "direction": "inbound-forward",
                        "received_event_id": found["event_id"],
                        "destination_id": found["destination_id"],
                        "url": found["url"],
                        "attempts": job.attempts,
                        "response_status_code": status,
                        "error": error[:500],
                    },
                    tenant_id=found["tenant_id"],
                    component="webhooks",
                    subject=found["source_id"],
                )
            return
        async with runtime.db.transaction() as conn:
            await _set(conn, forward_id, status="retrying", **outcome)
        raise RetryJob(error, delays[min(job.attempts, len(delays)) - 1])

    async def _deliver(found: dict[str, Any]) -> tuple[int | None, str | None, str, bool]:
        secret = runtime.vault.decrypt(
            found["secret"], context=destination_secret_context(found["destination_id"])
        )
        body: bytes = found["body"]
        headers = WebhookSigner([secret]).sign(found["event_id"], int(time.time()), body)
        headers["content-type"] = found["content_type"] or "application/octet-stream"
        headers["x-interlink-source-id"] = found["source_id"]
        headers["x-interlink-provider"] = found["provider"]
        headers["x-interlink-replay"] = str(found["replay"])
        if found["event_type"]:
            headers["x-interlink-event-type"] = found["event_type"]
        egress = inbound_state(runtime).egress
        try:
            response = await egress.request("POST", found["url"], headers=headers, body=body)
        except EgressError as exc:
            return None, exc.error_class, f"{exc.error_class}: {exc}", exc.retryable
        detail = f"HTTP {response.status}: {response.text()[:300]}"
        return response.status, None, detail, True

    return forward
