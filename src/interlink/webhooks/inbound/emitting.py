"""The ``webhook.received`` events: their data, and writing many in one statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.events.outbox import Outbox, OutboxEvent

__all__ = ["COMPONENT", "emit_all", "received_event_data"]

COMPONENT = "webhooks"


def received_event_data(
    event: Mapping[str, Any], source: Mapping[str, Any], payload: Any, replay: int
) -> dict[str, Any]:
    """The ``data`` of the ``webhook.received`` CloudEvent of a stored ``inbound_events`` row."""
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


async def emit_all(
    outbox: Outbox,
    conn: AsyncConnection,
    name: str,
    items: Sequence[tuple[Mapping[str, Any], str | None, str | None]],
    *,
    component: str = COMPONENT,
) -> None:
    """Emit ``dev.interlink.<name>`` once per ``(data, tenant_id, subject)`` in ``conn``."""
    await outbox.emit_many(
        conn,
        [
            OutboxEvent(name, data, tenant_id, component, subject)
            for data, tenant_id, subject in items
        ],
    )
