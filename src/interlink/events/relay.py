"""The relay: hands committed outbox events, in order, to the subscribers of this runtime.

A subscriber's ``handle`` runs inside the relay's transaction, so a subscriber that writes
(for example fanning events out to webhook messages) commits together with the mark that the
events were relayed: each event is handed on exactly once per successful commit. On
PostgreSQL the batch is locked with ``FOR UPDATE SKIP LOCKED``, so several relays share work.

The relay reads a batch in two steps. It first reads each event's head (sequence, tenant,
type) and asks every subscriber which of them it takes; only those events are read whole and
turned into envelopes. An event nobody takes (a ``request.completed`` of a tenant with no
endpoint subscribed to it, with no broker configured) is only marked: decoding its data and
building its envelope was most of the relay's cost per event.

On SQLite, when every subscriber can also choose on the connection's own thread
(:class:`DirectChooser`), a pass first *skims*: heads, choices and, if nobody takes any of the
events, their mark run as one transaction in one trip to that thread. Under a load of events
nobody takes (every received webhook emits one), the relay then holds the process's only
connection for one trip per pass instead of three, and every other writer waits behind it that
much less. A skim that finds a wanted event writes nothing, and the pass goes on the usual way;
the next pass skims again only after a pass in which nothing was wanted.

The relay of a runtime's workers (``settles=True``) goes further: it hands the same choice
to the outbox (:meth:`Outbox.settle_with`), so that the writers store the events nobody takes
as relayed already, and only wake the relay for the others. On SQLite the hot writers (the
inbound group commit, the proxy's buffered events) do so in their direct transactions; on
PostgreSQL every ``emit_many`` does, where marking each event afterwards left a dead row
version behind per event. Only one relay of a process may do this: the outbox asks the
subscribers of the last one that did.

The first event after a quiet spell is relayed at once; while events keep coming, the relay
lingers ``linger_seconds`` between partial batches so that they are handed on in a few large
transactions rather than one small one per commit of the emitters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Collection, Sequence
from typing import Any, Protocol

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.events.outbox import (
    NOTIFY_CHANNEL,
    DirectChooser,
    EventHead,
    Outbox,
    to_cloudevent,
)
from interlink.observability.metrics import Metrics
from interlink.store.database import StoreUnavailable, pipelined
from interlink.store.direct import DirectStatement, DirectTransaction, run_transaction
from interlink.store.notify import listen
from interlink.store.schema import events
from interlink.store.types import utcnow

__all__ = ["DirectChooser", "EventHead", "EventRelay", "EventSubscriber", "InMemorySubscriber"]

log = structlog.get_logger("interlink.relay")


class EventSubscriber(Protocol):
    """Receives batches of CloudEvents envelopes inside the relay's transaction."""

    name: str

    async def wanted(self, conn: AsyncConnection, heads: Sequence[EventHead]) -> Collection[int]:
        """The sequence numbers of the events among ``heads`` that this subscriber takes."""
        ...

    async def handle(self, conn: AsyncConnection, batch: Sequence[dict[str, Any]]) -> None:
        """Take the events :meth:`wanted` chose, in order, as envelopes."""
        ...


class InMemorySubscriber:
    """Keeps what it is handed, for tests and for embedding applications."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def wanted(self, conn: AsyncConnection, heads: Sequence[EventHead]) -> Collection[int]:
        return [head.seq for head in heads]

    async def handle(self, conn: AsyncConnection, batch: Sequence[dict[str, Any]]) -> None:
        self.received.extend(batch)
        self.arrived.set()


# Built once: building a statement per call costs about as much as running it.
_WHOLE = select(events).where(events.c.seq.in_(bindparam("seqs", expanding=True)))
_MARK_LISTED = pipelined(
    update(events)
    .where(events.c.seq.in_(bindparam("seqs", expanding=True)))
    .values(relayed=True, relayed_at=bindparam("now"))
)
# SQLite: the relay's transaction holds the write lock from its first statement, and the heads
# are the first unrelayed events in order, so they are exactly the unrelayed events up to the
# last head. One comparison instead of a list of 500 parameters.
_MARK_UP_TO = pipelined(
    update(events)
    .where(events.c.relayed.is_(False), events.c.seq <= bindparam("last"))
    .values(relayed=True, relayed_at=bindparam("now"))
)


def _skim_work(
    tx: DirectTransaction,
    heads_statement: DirectStatement,
    mark: DirectStatement,
    limit: int,
    choosers: Sequence[DirectChooser],
) -> int | None:
    """The skim, on the connection's thread: how many events it marked, or None (and nothing
    written) when a subscriber takes one of them."""
    heads = [EventHead(*row) for row in tx.fetch(heads_statement, [{"limit": limit, "offset": 0}])]
    if not heads:
        return 0
    if any(chooser.wanted_direct(tx, heads) for chooser in choosers):
        return None
    tx.execute_many(mark, [{"relayed": True, "last": heads[-1].seq, "now": utcnow()}])
    return len(heads)


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
        settles: bool = False,
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
        self._heads = (
            select(events.c.seq, events.c.tenant_id, events.c.type)
            .where(events.c.relayed.is_(False))
            .order_by(events.c.seq)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        # The skim (module docstring): SQLite only, and only when every subscriber can choose.
        choosers = [s for s in self.subscribers if isinstance(s, DirectChooser)]
        all_choose = len(choosers) == len(self.subscribers)
        self._choosers = choosers if all_choose and not self.db.is_postgres else None
        if settles and all_choose:
            counted = metrics.events_relayed.inc if metrics is not None else None
            outbox.settle_with(choosers, counted)
        self._skim_statements: tuple[DirectStatement, DirectStatement] | None = None
        self._skim_next = True

    async def _skim(self) -> int | None:
        """One skim (module docstring): the number of events marked, or None when a
        subscriber takes one of them and the pass must go the usual way."""
        assert self._choosers is not None
        if self._skim_statements is None:
            dialect = self.db.engine.dialect
            heads = self._heads.limit(bindparam("limit")).offset(bindparam("offset"))
            self._skim_statements = (
                DirectStatement.compile(heads, dialect),
                DirectStatement.compile(_MARK_UP_TO, dialect),
            )
        heads_statement, mark = self._skim_statements
        return await run_transaction(
            self.db, _skim_work, heads_statement, mark, self.batch_size, self._choosers
        )

    async def relay_once(self) -> int:
        """Hand on one batch of unrelayed events; returns how many."""
        if self._skim_next and self._choosers is not None:
            skimmed = await self._skim()
            if skimmed is not None:
                if self.metrics and skimmed:
                    self.metrics.events_relayed.inc(skimmed)
                return skimmed
        async with self.db.transaction() as conn:
            heads = [EventHead(*row) for row in await conn.execute(self._heads)]
            if not heads:
                return 0
            chosen = [set(await subscriber.wanted(conn, heads)) for subscriber in self.subscribers]
            wanted = set[int]().union(*chosen)
            if wanted:
                rows = await conn.execute(_WHOLE, {"seqs": sorted(wanted)})
                envelopes = {row["seq"]: to_cloudevent(row) for row in rows.mappings()}
                for subscriber, seqs in zip(self.subscribers, chosen, strict=True):
                    if seqs:
                        await subscriber.handle(conn, [envelopes[seq] for seq in sorted(seqs)])
            if self.db.is_postgres:
                marked = {"seqs": [head.seq for head in heads], "now": utcnow()}
                await conn.execute(_MARK_LISTED, marked)
            else:
                await conn.execute(_MARK_UP_TO, {"last": heads[-1].seq, "now": utcnow()})
        self._skim_next = not wanted
        if self.metrics:
            self.metrics.events_relayed.inc(len(heads))
        return len(heads)

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
