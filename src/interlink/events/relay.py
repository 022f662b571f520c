"""The relay: hands committed outbox events, in order, to the subscribers of this runtime.

A subscriber's ``handle`` runs inside the relay's transaction, so a subscriber that writes
(for example fanning events out to webhook messages) commits together with the mark that the
events were relayed: each event is handed on exactly once per successful commit. On
PostgreSQL the batch is locked with ``FOR UPDATE SKIP LOCKED``, so several relays share work.

The first event after a quiet spell is relayed at once; while events keep coming, the relay
lingers ``linger_seconds`` between partial batches so that they are handed on in a few large
transactions rather than one small one per commit of the emitters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.events.outbox import NOTIFY_CHANNEL, Outbox, to_cloudevent
from interlink.observability.metrics import Metrics
from interlink.store.database import StoreUnavailable, pipelined
from interlink.store.notify import listen
from interlink.store.schema import events
from interlink.store.types import utcnow

__all__ = ["EventRelay", "EventSubscriber", "InMemorySubscriber"]

log = structlog.get_logger("interlink.relay")


class EventSubscriber(Protocol):
    """Receives batches of CloudEvents envelopes inside the relay's transaction."""

    name: str

    async def handle(self, conn: AsyncConnection, batch: Sequence[dict[str, Any]]) -> None: ...


class InMemorySubscriber:
    """Keeps what it is handed, for tests and for embedding applications."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def handle(self, conn: AsyncConnection, batch: Sequence[dict[str, Any]]) -> None:
        self.received.extend(batch)
        self.arrived.set()


# Built once: building a statement per call costs about as much as running it.
_MARK_RELAYED = pipelined(
    update(events)
    .where(events.c.seq.in_(bindparam("seqs", expanding=True)))
    .values(relayed=True, relayed_at=bindparam("now"))
)


class EventRelay:
    def __init__(
        self,
        outbox: Outbox,
        subscribers: Sequence[EventSubscriber],
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        linger_seconds: float = 0.025,
        metrics: Metrics | None = None,
        listen_url: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.subscribers = list(subscribers)
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.metrics = metrics
        self.listen_url = listen_url
        self._wake = asyncio.Event()
        outbox.add_wake_listener(self._wake.set)
        self._unrelayed = (
            select(events)
            .where(events.c.relayed.is_(False))
            .order_by(events.c.seq)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )

    async def relay_once(self) -> int:
        """Hand on one batch of unrelayed events; returns how many."""
        async with self.db.transaction() as conn:
            rows = (await conn.execute(self._unrelayed)).mappings().all()
            if not rows:
                return 0
            batch = [to_cloudevent(row) for row in rows]
            for subscriber in self.subscribers:
                await subscriber.handle(conn, batch)
            seqs = [row["seq"] for row in rows]
            await conn.execute(_MARK_RELAYED, {"seqs": seqs, "now": utcnow()})
        if self.metrics:
            self.metrics.events_relayed.inc(len(rows))
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop)) if self.listen_url else None
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    count = await self.relay_once()
                except StoreUnavailable as error:
                    log.warning("relay failed; will retry", error=str(error))
                    count = 0
                except Exception:
                    log.exception("a subscriber failed; the batch will be retried")
                    count = 0
                    await asyncio.sleep(self.poll_seconds * random.uniform(1, 2))
                if count >= self.batch_size:
                    continue
                if count:
                    # More are on their way under load: let them gather into one transaction
                    # instead of relaying each commit's few events on its own.
                    await asyncio.sleep(self.linger_seconds)
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        wake = asyncio.ensure_future(self._wake.wait())
                        stopped = asyncio.ensure_future(stop.wait())
                        try:
                            await asyncio.wait({wake, stopped}, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            wake.cancel()
                            stopped.cancel()
        finally:
            if listener:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self, stop: asyncio.Event) -> None:
        assert self.listen_url is not None
        await listen(self.listen_url, NOTIFY_CHANNEL, self._wake.set, stop, retry=self.poll_seconds)
