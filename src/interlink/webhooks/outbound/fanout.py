"""Internal events to outbound webhooks: the relay hands committed CloudEvents to
:class:`EventFanout`, which turns each into a message for the tenant's endpoints that
subscribe to its type (``dev.interlink.record.updated``, ...) by name.

It runs inside the relay's transaction, so the messages commit with the relay's mark and each
event becomes a message exactly once; the message's idempotency key is the event id besides.
Only endpoints that list the type explicitly receive internal events. It chooses on the
events' heads (tenant and type), so the relay never reads an event no endpoint subscribes to;
on SQLite it can make that choice on the connection's thread too, so that the relay skims.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink import exact_json
from interlink.events.outbox import EVENT_TYPE_PREFIX
from interlink.events.relay import EventHead
from interlink.store.direct import DirectStatement, DirectTransaction
from interlink.webhooks.outbound.messages import MessageRequest, create_message
from interlink.webhooks.outbound.state import outbound_state
from interlink.webhooks.outbound.tables import outbound_endpoints

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["EventFanout"]


# Built once: building a statement per call costs about as much as running it.
_SUBSCRIPTIONS = select(outbound_endpoints.c.event_types).where(
    outbound_endpoints.c.tenant_id == bindparam("tenant_id"),
    outbound_endpoints.c.disabled.is_(False),
)


class EventFanout:
    """The event subscriber that fans internal events out to subscribed endpoints."""

    name = "outbound-webhooks"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._direct_subscriptions: DirectStatement | None = None

    async def wanted(self, conn: AsyncConnection, heads: Sequence[EventHead]) -> Collection[int]:
        """The events whose type an enabled endpoint of their tenant subscribes to."""
        chosen: list[int] = []
        for tenant_id, tenant_heads in _by_tenant(heads).items():
            rows = await conn.execute(_SUBSCRIPTIONS, {"tenant_id": tenant_id})
            types = _internal_types(types for (types,) in rows)
            chosen.extend(head.seq for head in tenant_heads if head.type in types)
        return chosen

    def wanted_direct(self, tx: DirectTransaction, heads: Sequence[EventHead]) -> Collection[int]:
        """:meth:`wanted` in a direct transaction: the relay's skim and the writers' settling."""
        if self._direct_subscriptions is None:
            dialect = self.runtime.db.engine.dialect
            self._direct_subscriptions = DirectStatement.compile(_SUBSCRIPTIONS, dialect)
        chosen: list[int] = []
        for tenant_id, tenant_heads in _by_tenant(heads).items():
            rows = tx.fetch(self._direct_subscriptions, [{"tenant_id": tenant_id}])
            # The column as the driver hands it over: JSON text on SQLite, which SQLAlchemy
            # would decode; on PostgreSQL the connection's codec has decoded it (to a list).
            types = _internal_types(
                exact_json.loads(value) if isinstance(value, str) else value for (value,) in rows
            )
            chosen.extend(head.seq for head in tenant_heads if head.type in types)
        return chosen

    async def handle(self, conn: AsyncConnection, batch: Sequence[dict[str, Any]]) -> None:
        """Create a message per event (each one that :meth:`wanted` chose)."""
        state = outbound_state(self.runtime)
        for event in batch:
            request = MessageRequest(
                tenant_id=event["tenantid"],
                event_type=event["type"],
                payload=event,
                idempotency_key=f"event:{event['id']}",
                source_event_id=event["id"],
                explicit_only=True,
            )
            await create_message(
                conn,
                self.runtime.queue,
                request,
                filters=state.compiled,
                idempotency_window=state.config.payload_retention,
                pg=self.runtime.db.is_postgres,
            )


def _by_tenant(heads: Sequence[EventHead]) -> dict[str, list[EventHead]]:
    by_tenant: dict[str, list[EventHead]] = defaultdict(list)
    for head in heads:
        if head.tenant_id:
            by_tenant[head.tenant_id].append(head)
    return by_tenant


def _internal_types(lists: Iterable[Any]) -> set[str]:
    """The internal event types named in the endpoints' ``event_types`` lists."""
    return {
        name
        for types in lists
        for name in types or ()
        if isinstance(name, str) and name.startswith(EVENT_TYPE_PREFIX)
    }
