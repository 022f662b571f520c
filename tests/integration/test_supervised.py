"""Background loops that die of an unexpected error come back by themselves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from interlink.queue import Job, JobContext, Worker
from interlink.runtime import Runtime, supervised


async def test_a_worker_that_crashed_is_restarted_and_runs_the_queued_job(
    runtime: Runtime,
) -> None:
    queue = runtime.queue
    claim = queue.claim
    calls = 0

    async def claim_failing_once(*args: Any, **kwargs: Any) -> list[Job]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("an unexpected bug")
        return await claim(*args, **kwargs)

    queue.claim = claim_failing_once  # type: ignore[method-assign]
    ran = asyncio.Event()

    async def record(job: Job, ctx: JobContext) -> None:
        ran.set()

    async with queue.db.transaction() as conn:
        await queue.enqueue(conn, "test.noop", {})
    worker = Worker(queue, {"test.noop": record}, poll_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(
        supervised("worker", lambda: worker.run(stop), stop, first_delay=0.05)
    )
    try:
        async with asyncio.timeout(10):
            await ran.wait()
    finally:
        stop.set()
        await task
    assert calls >= 2
    (row,) = await queue.list()
    assert row["status"] == "succeeded"


async def test_stop_ends_the_wait_before_a_restart() -> None:
    stop = asyncio.Event()
    runs = 0

    async def always_fails() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("broken")

    started = time.monotonic()
    task = asyncio.create_task(supervised("loop", always_fails, stop, first_delay=30))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert runs == 1
    assert time.monotonic() - started < 5
