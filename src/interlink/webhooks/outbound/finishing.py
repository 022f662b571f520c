"""What follows a delivery's final outcome: the next delivery of its ordering key, and the
``webhook.delivered`` / ``webhook.failed`` event, written in the recording transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.events.outbox import EVENT_TYPE_PREFIX, OutboxEvent
from interlink.webhooks.outbound.ordering import advance_key

if TYPE_CHECKING:
    from interlink.runtime import Runtime
    from interlink.webhooks.outbound.recording import Outcome

__all__ = ["emit_all", "finish_delivery"]


async def finish_delivery(
    runtime: Runtime, conn: AsyncConnection, outcome: Outcome, status: str, error: str | None
) -> tuple[str, dict[str, Any], str, str] | None:
    """Advance the ordering key; returns the event to emit (none for internal events)."""
    row = outcome.row
    if row.ordering_key is not None:
        await advance_key(
            conn,
            runtime.queue,
            endpoint_id=row.endpoint_id,
            ordering_key=row.ordering_key,
            finished_delivery_id=row.id,
            generation=row.generation,
            tenant_id=row.tenant_id,
        )
    if row.event_type.startswith(EVENT_TYPE_PREFIX):
        return None  # never report on internal events' deliveries: no feedback loops
    data: dict[str, Any] = {
        "message_id": row.message_id,
        "endpoint_id": row.endpoint_id,
        "event_type": row.event_type,
        "attempts": row.attempts + (1 if outcome.result is not None else 0),
    }
    if outcome.result is not None:
        data["response_status_code"] = outcome.result.status_code
    if error:
        data["error"] = error
    name = "webhook.delivered" if status == "succeeded" else "webhook.failed"
    return name, data, row.tenant_id, row.message_id


async def emit_all(
    runtime: Runtime, conn: AsyncConnection, found: list[tuple[str, dict[str, Any], str, str]]
) -> None:
    """Write the batch's events in one statement."""
    await runtime.outbox.emit_many(
        conn,
        [
            OutboxEvent(name, data, tenant_id, "webhooks", subject)
            for name, data, tenant_id, subject in found
        ],
    )
