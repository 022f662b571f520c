"""10,000 jobs, two worker processes on PostgreSQL, one killed with SIGKILL in the middle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from interlink.queue import JobQueue
from interlink.store import migrate
from interlink.store.database import Database
from tests.conftest import MASTER_KEY

pytestmark = pytest.mark.slow
JOBS = 10_000
SCRIPT = Path(__file__).with_name("queue_worker_proc.py")


def _start_worker(db_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "INTERLINK_DATABASE_URL": db_url,
        "INTERLINK_MASTER_KEY": MASTER_KEY,
        "INTERLINK_JOB_LEASE_SECONDS": "2",
        "INTERLINK_JOB_POLL_SECONDS": "0.2",
        "INTERLINK_LOG_LEVEL": "warning",
        "PYTHONPATH": str(SCRIPT.parents[2]),
    }
    return subprocess.Popen([sys.executable, str(SCRIPT)], env=env, stdout=subprocess.DEVNULL)


async def _count(db: Database, sql: str) -> int:
    async with db.transaction() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_sigkill_of_a_worker_loses_nothing_and_repeats_nothing(pg_url: str) -> None:
    db = Database(pg_url)
    await migrate.upgrade(db)
    async with db.transaction() as conn:
        await conn.execute(
            text("CREATE TABLE job_effects (job_id text NOT NULL, pid int NOT NULL)")
        )
    queue = JobQueue(db)
    items = [("test.effect", {"n": n}, None, f"effect-{n}") for n in range(JOBS)]
    async with db.transaction() as conn:
        created = await queue.enqueue_many(conn, items)
    assert all(created)
    async with db.transaction() as conn:
        again = await queue.enqueue_many(conn, items[:100])
    assert again == [None] * 100  # the idempotency keys hold

    victim, survivor = _start_worker(pg_url), _start_worker(pg_url)
    try:
        async with asyncio.timeout(240):
            while (
                await _count(db, f"SELECT count(*) FROM job_effects WHERE pid = {victim.pid}")
                < 1000
            ):
                assert victim.poll() is None, "the worker died on its own"
                await asyncio.sleep(0.05)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            # The effects' jobs only: each worker process also asks for the next hour's
            # housekeeping (`core.purge`), which stays queued.
            unfinished = (
                "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND status <> 'succeeded'"
            )
            while await _count(db, unfinished) > 0:
                assert survivor.poll() is None, "the surviving worker died"
                await asyncio.sleep(0.25)
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
    assert await _count(db, "SELECT count(*) FROM job_effects") == JOBS
    assert await _count(db, "SELECT count(DISTINCT job_id) FROM job_effects") == JOBS
    assert (
        await _count(
            db, "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND status = 'succeeded'"
        )
        == JOBS
    )
    by_survivor = await _count(db, f"SELECT count(*) FROM job_effects WHERE pid = {survivor.pid}")
    assert 0 < by_survivor < JOBS
    await db.dispose()
