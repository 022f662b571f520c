"""Writing many ``webhook.received`` events to the outbox in one statement.

``Outbox.emit`` writes one row per call, a round trip each; a processing batch has up to a
hundred events. The first event goes through ``Outbox.emit`` (which arranges the relay's
wake-up, and ``NOTIFY`` on PostgreSQL), the rest are inserted together into the outbox table
with the same envelope fields. Should the core grow ``Outbox.emit_many``, this becomes one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.events.outbox import EVENT_TYPE_PREFIX, Outbox
from interlink.ids import new_id
from interlink.store.schema import events
from interlink.store.types import utcnow

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
    if not items:
        return
    (data, tenant_id, subject), rest = items[0], items[1:]
    await outbox.emit(conn, name, data, tenant_id=tenant_id, component=component, subject=subject)
    if not rest:
        return
    now = utcnow()
    rows = [
        {
            "id": new_id("evt"),
            "tenant_id": tenant_id,
            "type": f"{EVENT_TYPE_PREFIX}{name}",
            "source": f"/interlink/{tenant_id or 'system'}/{component}",
            "subject": subject,
            "time": now,
            "data": dict(data),
            "relayed": False,
        }
        for data, tenant_id, subject in rest
    ]
    await conn.execute(events.insert(), rows)
