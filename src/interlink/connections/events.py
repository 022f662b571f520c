"""Batched events of the hot path: one outbox transaction per flush, not one per request.

The proxy emits ``request.completed`` for every call and breakers emit their transitions from
synchronous hooks. Writing an outbox row inside each proxied request would add a database
transaction to the hot path, so events go into an in-memory buffer that a background task
flushes every ``interval`` seconds in one transaction. The trade-off: events of the last
interval are lost if the process is killed (they describe calls that already completed; no
state change depends on them), and a full buffer drops the oldest events (counted in
``interlink_connections_events_dropped_total``). State changes (a connection created, expired,
revoked) are never buffered: they are emitted in the transaction that makes the change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from interlink.events.outbox import OutboxEvent

if TYPE_CHECKING:
    from prometheus_client import Counter

    from interlink.runtime import Runtime

__all__ = ["EventBuffer"]

log = structlog.get_logger("interlink.connections.events")
COMPONENT = "connections"


class EventBuffer:
    """Collects events in memory and writes them to the outbox in batches.

    Args:
        runtime: whose database and outbox receive the events.
        interval: seconds between flushes.
        capacity: events kept at most; beyond it the oldest are dropped.
        dropped: counter of dropped events.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval: float = 0.25,
        capacity: int = 50_000,
        dropped: Counter | None = None,
    ) -> None:
        self._runtime = runtime
        self.interval = interval
        self._events: deque[OutboxEvent] = deque(maxlen=capacity)
        self._dropped = dropped
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def add(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        tenant_id: str | None,
        subject: str | None = None,
    ) -> None:
        """Queue event ``dev.interlink.<name>`` for the next flush (never blocks)."""
        if len(self._events) == self._events.maxlen and self._dropped is not None:
            self._dropped.inc()
        self._events.append(OutboxEvent(name, data, tenant_id, COMPONENT, subject))

    def __len__(self) -> int:
        return len(self._events)

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="connections-event-flush")

    async def stop(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> int:
        """Write every buffered event in one transaction; returns how many were written."""
        if not self._events:
            return 0
        batch = list(self._events)
        self._events.clear()
        try:
            await self._runtime.outbox.emit_alone(batch)
        except Exception as error:
            # Put them back (oldest first) so that a short store outage loses nothing.
            self._events.extendleft(reversed(batch))
            log.warning("event flush failed", error=str(error), pending=len(self._events))
            return 0
        return len(batch)

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
            await self.flush()
