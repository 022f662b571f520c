"""Group commit for delivery outcomes: batches that finish together share one transaction.

The worker claims deliveries as they become due, often a few at a time; writing each small
batch's attempts in a transaction of its own would make the store, not the network, the limit.
:class:`Recorder` queues finished batches and writes every queued one in one transaction, which
also completes their jobs (only while each batch still holds its leases). If any batch lost its
lease, the group is written again batch by batch, so one late batch cannot undo the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from interlink.queue.jobs import LeaseLost
from interlink.queue.worker import BatchContext
from interlink.webhooks.outbound.recording import Plan, write_plan

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["Recorder"]

_Pending = tuple[BatchContext, Plan, "asyncio.Future[None]"]


class Recorder:
    """Writes delivery outcomes for a runtime; :meth:`record` returns once committed."""

    def __init__(self, runtime: Runtime, *, concurrency: int, max_group: int = 64) -> None:
        self.runtime = runtime
        self.concurrency = concurrency
        self.max_group = max_group
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def record(self, ctx: BatchContext, plan: Plan) -> None:
        """Write ``plan`` and complete ``ctx``'s jobs; raises LeaseLost like ``ctx.transaction``."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [
                asyncio.create_task(self._run(self._queue), name="outbound-recorder")
                for _ in range(self.concurrency)
            ]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((ctx, plan, future))
        await future

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._queue = [], None

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            group = [await queue.get()]
            while len(group) < self.max_group and not queue.empty():
                group.append(queue.get_nowait())
            group = [item for item in group if not item[2].done()]
            if not group:
                continue
            try:
                await self._write(group)
            except LeaseLost:
                for item in group:
                    await self._write_alone(item)
            except Exception as error:
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, _, future in group:
                    if not future.done():
                        future.set_result(None)

    async def _write(self, group: list[_Pending]) -> None:
        from interlink.webhooks.outbound.state import outbound_state

        runtime, state = self.runtime, outbound_state(self.runtime)
        async with runtime.db.transaction(inline=True) as conn:
            for ctx, plan, _ in group:
                # Completing first begins the transaction on PostgreSQL, so that the plan's
                # writes go straight to the driver (store.direct.write_many); a lost lease is
                # found before anything is written.
                await ctx.complete_in(conn)
                await write_plan(runtime, state, conn, plan)

    async def _write_alone(self, item: _Pending) -> None:
        from interlink.webhooks.outbound.state import outbound_state

        ctx, plan, future = item
        try:
            async with ctx.transaction() as conn:
                await write_plan(self.runtime, outbound_state(self.runtime), conn, plan)
        except Exception as error:
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(None)
