"""Reading messages: one with its deliveries' states, a tenant's list, the public shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.webhooks.outbound.tables import outbound_deliveries, outbound_messages

__all__ = ["get_message", "list_messages", "public_message"]


async def get_message(
    conn: AsyncConnection, tenant_id: str, message_id: str
) -> dict[str, Any] | None:
    query = select(outbound_messages).where(
        outbound_messages.c.id == message_id, outbound_messages.c.tenant_id == tenant_id
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    found = dict(row)
    deliveries = await conn.execute(
        select(
            outbound_deliveries.c.endpoint_id,
            outbound_deliveries.c.status,
            outbound_deliveries.c.attempts,
            outbound_deliveries.c.next_attempt_at,
            outbound_deliveries.c.last_status_code,
        )
        .where(outbound_deliveries.c.message_id == message_id)
        .order_by(outbound_deliveries.c.endpoint_id)
    )
    found["deliveries"] = [dict(item) for item in deliveries.mappings()]
    return found


async def list_messages(
    conn: AsyncConnection, tenant_id: str, *, event_type: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    table = outbound_messages
    query = select(table).where(table.c.tenant_id == tenant_id).order_by(table.c.id).limit(limit)
    if event_type:
        query = query.where(table.c.event_type == event_type)
    if after:
        query = query.where(table.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


def public_message(row: dict[str, Any]) -> dict[str, Any]:
    """The message as the API shows it."""
    shown = {
        key: row[key]
        for key in ("id", "tenant_id", "event_type", "payload", "ordering_key", "created_at")
    }
    shown["idempotency_key"] = row["idempotency_key"]
    shown["payload_purged"] = row.get("payload_purged_at") is not None
    if "deliveries" in row:
        shown["deliveries"] = row["deliveries"]
    return shown
