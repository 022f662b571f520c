"""The sync-trigger hook: how another capability (sync) learns that a source's webhook arrived.

A trigger is called by the processing job, inside its transaction, for every event of a source
that belongs to a connection (``connection_id``). Doing its work in ``conn`` (for example
enqueueing a sync run with an idempotency key derived from ``event.event_id``) makes it happen
exactly once with the processing of the event. Raising makes the processing job retry.

Example::

    class SyncOnWebhook:
        async def trigger(self, conn, event):
            await runtime.queue.enqueue(conn, "sync.run", {...},
                                        idempotency_key=f"sync-on:{event.event_id}")

    register_sync_trigger(runtime, SyncOnWebhook())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["ReceivedWebhook", "SyncTrigger", "register_sync_trigger", "sync_triggers"]


@dataclass(frozen=True)
class ReceivedWebhook:
    """What a sync trigger is told about a received event."""

    event_id: str
    tenant_id: str
    source_id: str
    connection_id: str
    provider: str
    event_type: str | None
    delivery_id: str | None
    payload: Any
    replay: int


class SyncTrigger(Protocol):
    """Called for each processed event of a source bound to a connection."""

    async def trigger(self, conn: AsyncConnection, event: ReceivedWebhook) -> None:
        """Start whatever the event calls for, inside the processing transaction ``conn``."""
        ...


def sync_triggers(runtime: Runtime) -> list[SyncTrigger]:
    """The runtime's list of sync triggers: ``runtime.state["inbound"].sync_triggers``."""
    from interlink.webhooks.inbound.state import inbound_state

    return inbound_state(runtime).sync_triggers


def register_sync_trigger(runtime: Runtime, trigger: SyncTrigger) -> None:
    """Add ``trigger``; usually from another capability's ``on_start``."""
    sync_triggers(runtime).append(trigger)
