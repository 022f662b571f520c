"""Writing many ``webhook.received`` events to the outbox in one statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.events.outbox import Outbox, OutboxEvent

__all__ = ["emit_all"]


async def emit_all(
    outbox: Outbox,
    conn: AsyncConnection,
    name: str,
    items: Sequence[tuple[Mapping[str, Any], str | None, str | None]],
    *,
    component: str,
) -> None:
    """Emit ``dev.interlink.<name>`` once per ``(data, tenant_id, subject)`` in ``conn``."""
    await outbox.emit_many(
        conn,
        [
            OutboxEvent(name, data, tenant_id, component, subject)
            for data, tenant_id, subject in items
        ],
    )
