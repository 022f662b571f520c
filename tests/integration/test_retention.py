"""Retention of outbox events and finished jobs: relayed events and succeeded jobs past the
retention go, a batch per transaction; events not yet relayed and jobs not succeeded stay
however old, and younger ones stay."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select

from interlink.ids import id_floor
from interlink.runtime import Runtime
from interlink.store.schema import events, jobs
from interlink.store.types import utcnow
from tests.integration.store_support import made_at


async def _insert(runtime: Runtime, moment: datetime, count: int, *, relayed: bool) -> list[str]:
    ids = [made_at("evt", moment, n) for n in range(count)]
    rows = [
        {"id": event_id, "tenant_id": None, "type": "dev.interlink.request.completed",
         "source": "/interlink/system/test", "subject": None, "time": moment, "data": {},
         "relayed": relayed, "relayed_at": moment if relayed else None}
        for event_id in ids
    ]  # fmt: skip
    async with runtime.db.transaction() as conn:
        await conn.execute(insert(events), rows)
    return ids


async def _ids(runtime: Runtime) -> set[str]:
    async with runtime.db.transaction() as conn:
        return set((await conn.execute(select(events.c.id))).scalars())


async def test_relayed_events_past_the_retention_are_purged_in_batches(runtime: Runtime) -> None:
    now = utcnow()
    old_relayed = await _insert(runtime, now - timedelta(days=8), 7, relayed=True)
    old_pending = await _insert(runtime, now - timedelta(days=9), 2, relayed=False)
    young = await _insert(runtime, now - timedelta(days=6), 3, relayed=True)

    assert await runtime.outbox.purge(timedelta(days=7), batch=3) == 7  # 3 ids a transaction

    assert await _ids(runtime) == {*old_pending, *young}
    assert not set(old_relayed) & await _ids(runtime)
    assert await runtime.outbox.purge(timedelta(days=7)) == 0
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(func.count()).select_from(events))).scalar() == 5


async def test_the_cutoff_falls_between_ids_made_before_and_after_it(runtime: Runtime) -> None:
    now = utcnow()
    before = await _insert(runtime, now - timedelta(days=7, seconds=2), 1, relayed=True)
    after = await _insert(runtime, now - timedelta(days=7) + timedelta(seconds=30), 1, relayed=True)

    assert await runtime.outbox.purge(timedelta(days=7)) == 1
    assert await _ids(runtime) == set(after)
    assert before[0] < id_floor("evt", now - timedelta(days=7)) <= after[0]


async def test_the_workers_housekeeping_purges_at_start(runtime: Runtime) -> None:
    now = utcnow()
    await _insert(runtime, now - timedelta(days=8), 2, relayed=True)
    young = await _insert(runtime, now - timedelta(days=1), 1, relayed=True)
    stop = asyncio.Event()
    workers = asyncio.create_task(runtime.run_workers(stop))
    try:
        deadline = time.monotonic() + 10
        while await _ids(runtime) != set(young):
            assert time.monotonic() < deadline, "the old events were not purged"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await workers


async def _insert_jobs(
    runtime: Runtime, made: datetime, status: str, count: int, *, finished: datetime | None
) -> list[str]:
    rows = runtime.queue.rows([("test.noop", {}, None, None)] * count)
    for n, row in enumerate(rows):
        row.update(id=made_at("job", made, n), status=status, created_at=made, updated_at=made)
        row["finished_at"] = finished
    async with runtime.db.transaction() as conn:
        await conn.execute(insert(jobs), rows)
    return [row["id"] for row in rows]


async def _job_ids(runtime: Runtime) -> set[str]:
    async with runtime.db.transaction() as conn:
        return set((await conn.execute(select(jobs.c.id))).scalars())


async def test_jobs_that_succeeded_past_the_retention_are_purged_in_batches(
    runtime: Runtime,
) -> None:
    now, week = utcnow(), timedelta(days=7)
    old_done = await _insert_jobs(runtime, now - timedelta(days=9), "succeeded", 5,
                                  finished=now - timedelta(days=8))  # fmt: skip
    # Made before the cutoff, finished after it: not old enough yet.
    late_done = await _insert_jobs(runtime, now - timedelta(days=8), "succeeded", 1,
                                   finished=now - timedelta(days=6))  # fmt: skip
    nine_days = now - timedelta(days=9)
    old_dead = await _insert_jobs(
        runtime, nine_days + timedelta(seconds=1), "dead", 2, finished=None
    )
    old_queued = await _insert_jobs(
        runtime, nine_days + timedelta(seconds=2), "queued", 1, finished=None
    )
    young_done = await _insert_jobs(runtime, now - timedelta(days=1), "succeeded", 2,
                                    finished=now - timedelta(days=1))  # fmt: skip

    assert await runtime.queue.purge_finished(week, batch=2) == 5  # 2 ids a transaction
    assert await _job_ids(runtime) == {*late_done, *old_dead, *old_queued, *young_done}
    assert not set(old_done) & await _job_ids(runtime)
    assert await runtime.queue.purge_finished(week) == 0
