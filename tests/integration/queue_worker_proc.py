"""A worker process for the kill -9 test: each job writes one row to ``job_effects``.

Run as ``python queue_worker_proc.py`` with INTERLINK_DATABASE_URL and INTERLINK_MASTER_KEY set.
"""

from __future__ import annotations

import asyncio
import os
import signal

from sqlalchemy import text

from interlink.queue import Job, JobContext
from interlink.runtime import Runtime
from interlink.settings import load_settings


async def main() -> None:
    runtime = Runtime(load_settings(), capabilities=[])
    pid = os.getpid()

    async def effect(job: Job, ctx: JobContext) -> None:
        await asyncio.sleep(0.001)
        async with ctx.transaction() as conn:
            await conn.execute(
                text("INSERT INTO job_effects (job_id, pid) VALUES (:job_id, :pid)"),
                {"job_id": job.id, "pid": pid},
            )

    runtime.extra_handlers["test.effect"] = effect
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await runtime.run_workers(stop, concurrency=16)
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
