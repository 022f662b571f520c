"""Group commit for message acceptance: concurrent requests share one transaction.

Each request waits for the commit that stores its message (and deliveries and jobs) before
it is answered 202, so nothing is acknowledged that is not durable; under load one commit
carries many messages, written with a few statements for the whole batch. A batch that the
store refuses as a whole is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from interlink.store.database import StoreRejected
from interlink.webhooks.outbound.event_types import check_payloads
from interlink.webhooks.outbound.messages import MessageRequest, create_messages

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["MessageWriter"]

_Pending = tuple[MessageRequest, "asyncio.Future[tuple[dict[str, Any], bool]]"]


class MessageWriter:
    """Accepts messages for a runtime; :meth:`submit` returns once the message is committed.

    One task writes one batch at a time, on either store: on PostgreSQL four tasks made smaller
    batches, each paying the transaction's statements, and fewer messages a second
    (``docs/outbound-webhooks.md``).
    """

    def __init__(self, runtime: Runtime, *, max_batch: int = 256) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: MessageRequest) -> tuple[dict[str, Any], bool]:
        """Store ``request``; returns ``(message row, created)``; raises PayloadRejected."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(self._queue), name="outbound-writer")
        future: asyncio.Future[tuple[dict[str, Any], bool]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue.put_nowait((request, future))
        return await future

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task, self._queue = None, None

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write(batch)
            except StoreRejected:
                for item in batch:  # find the one the store refuses; the others go in
                    await self._write_guarded([item])
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    async def _write_guarded(self, batch: list[_Pending]) -> None:
        try:
            await self._write(batch)
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)

    async def _write(self, batch: list[_Pending]) -> None:
        from interlink.webhooks.outbound.state import outbound_state

        runtime, state = self.runtime, outbound_state(self.runtime)
        batch = [item for item in batch if not item[1].done()]  # cancelled by the client
        async with runtime.db.transaction(inline=True) as conn:
            verdicts = await check_payloads(
                conn, state.validators, [(req.event_type, req.payload) for req, _ in batch]
            )
            accepted = [item for item, verdict in zip(batch, verdicts, strict=True) if not verdict]
            results = await create_messages(
                conn,
                runtime.queue,
                [request for request, _ in accepted],
                filters=state.compiled,
                idempotency_window=state.config.idempotency_window,
                pg=runtime.db.is_postgres,
            )
        for (_, future), verdict in zip(batch, verdicts, strict=True):
            if verdict is not None and not future.done():
                future.set_exception(verdict)
        for (_, future), result in zip(accepted, results, strict=True):
            if not future.done():
                future.set_result(result)
