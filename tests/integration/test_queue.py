"""The durable work queue on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from interlink.queue import (
    Job,
    JobContext,
    JobQueue,
    LeaseLost,
    PermanentJobError,
    RetryJob,
    Worker,
)
from interlink.runtime import Runtime
from interlink.store.schema import jobs
from interlink.store.types import utcnow


async def _enqueue(queue: JobQueue, kind: str = "test.noop", **kwargs: object) -> str | None:
    async with queue.db.transaction() as conn:
        return await queue.enqueue(conn, kind, {"n": 1}, **kwargs)  # type: ignore[arg-type]


async def test_a_job_is_written_only_if_its_transaction_commits(runtime: Runtime) -> None:
    queue = runtime.queue
    with pytest.raises(RuntimeError):
        async with runtime.db.transaction() as conn:
            await queue.enqueue(conn, "test.noop", {})
            raise RuntimeError("the caller's change failed")
    assert await queue.list() == []
    await _enqueue(queue)
    assert len(await queue.list()) == 1


async def test_idempotency_key_creates_one_job(runtime: Runtime) -> None:
    first = await _enqueue(runtime.queue, idempotency_key="order-42")
    second = await _enqueue(runtime.queue, idempotency_key="order-42")
    assert first is not None
    assert second is None
    assert [row["id"] for row in await runtime.queue.list()] == [first]


async def test_claim_leases_due_jobs_once(runtime: Runtime) -> None:
    queue = runtime.queue
    for _ in range(5):
        await _enqueue(queue)
    await _enqueue(queue, run_at=utcnow() + timedelta(hours=1))
    await _enqueue(queue, kind="other.kind")
    first = await queue.claim("w1", ["test.noop"], 3)
    second = await queue.claim("w2", ["test.noop"], 10)
    assert len(first) == 3
    assert len(second) == 2  # the future job and the other kind are not due for this claim
    assert {job.id for job in first}.isdisjoint(job.id for job in second)
    assert all(job.attempts == 1 for job in first + second)


async def test_concurrent_claims_never_share_a_job(runtime: Runtime) -> None:
    queue = runtime.queue
    async with runtime.db.transaction() as conn:
        await queue.enqueue_many(conn, [("test.noop", {}, None, None)] * 200)
    batches = await asyncio.gather(*(queue.claim(f"w{i}", ["test.noop"], 30) for i in range(10)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == 200
    assert len(set(ids)) == 200


async def test_completion_needs_the_lease(runtime: Runtime) -> None:
    queue = runtime.queue
    await _enqueue(queue)
    (job,) = await queue.claim("w1", ["test.noop"], 1)
    stale = Job(**{**job.__dict__, "lease_token": "someone-else"})
    with pytest.raises(LeaseLost):
        async with runtime.db.transaction() as conn:
            await queue.complete_in(conn, stale)
    async with runtime.db.transaction() as conn:
        await queue.complete_in(conn, job)
    (row,) = await queue.list()
    assert row["status"] == "succeeded"


async def test_expired_lease_is_claimed_again(runtime: Runtime) -> None:
    queue = runtime.queue
    await _enqueue(queue)
    (job,) = await queue.claim("dead-worker", ["test.noop"], 1)
    async with runtime.db.transaction() as conn:
        await conn.execute(update(jobs).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert await queue.reap_expired() == 1
    (again,) = await queue.claim("w2", ["test.noop"], 1)
    assert again.id == job.id
    assert again.attempts == 2
    # The first worker's late completion must not count.
    assert await queue.complete_many([job]) == 0
    assert await queue.complete_many([again]) == 1


async def test_last_attempt_expiring_goes_dead(runtime: Runtime) -> None:
    queue = runtime.queue
    await _enqueue(queue, max_attempts=1)
    await queue.claim("w", ["test.noop"], 1)
    async with runtime.db.transaction() as conn:
        await conn.execute(update(jobs).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    await queue.reap_expired()
    (row,) = await queue.list(status="dead")
    assert "lease expired" in row["last_error"]


async def _run_worker_until(worker: Worker, condition: object, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # type: ignore[operator]
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


async def test_worker_retries_then_buries_and_an_operator_retries(runtime: Runtime) -> None:
    queue = runtime.queue
    calls: list[int] = []

    async def flaky(job: Job, ctx: JobContext) -> None:
        calls.append(job.attempts)
        if job.payload.get("mode") == "permanent":
            raise PermanentJobError("cannot ever work")
        raise RetryJob("receiver down", delay=0.0)

    worker = Worker(queue, {"test.flaky": flaky}, poll_seconds=0.02)
    async with runtime.db.transaction() as conn:
        await queue.enqueue(conn, "test.flaky", {}, max_attempts=3)
        await queue.enqueue(conn, "test.flaky", {"mode": "permanent"}, max_attempts=3)

    async def both_dead() -> bool:
        return len(await queue.list(status="dead")) == 2

    await _run_worker_until(worker, both_dead)
    assert sorted(calls) == [1, 1, 2, 3]
    dead = await queue.list(status="dead")
    assert {row["last_error"] for row in dead} == {"receiver down", "permanent: cannot ever work"}
    assert await queue.retry_dead(dead[0]["id"])
    assert not await queue.retry_dead(dead[0]["id"])
    (row,) = await queue.list(status="queued")
    assert row["attempts"] == 0


async def test_retry_is_scheduled_in_the_future(runtime: Runtime) -> None:
    queue = runtime.queue
    await _enqueue(queue)
    (job,) = await queue.claim("w", ["test.noop"], 1)
    await queue.retry_later(job, 60, "later")
    assert await queue.claim("w", ["test.noop"], 1) == []
    (row,) = await queue.list()
    assert row["run_at"] > utcnow() + timedelta(seconds=50)


async def test_handler_transaction_commits_work_and_completion_together(runtime: Runtime) -> None:
    queue = runtime.queue
    done = asyncio.Event()

    async def handler(job: Job, ctx: JobContext) -> None:
        async with ctx.transaction() as conn:
            await runtime.outbox.emit(
                conn, "test.happened", {"job": job.id}, tenant_id=None, component="test"
            )
        done.set()

    worker = Worker(queue, {"test.tx": handler}, poll_seconds=0.02)
    async with runtime.db.transaction() as conn:
        job_id = await queue.enqueue(conn, "test.tx", {})

    async def finished() -> bool:
        row = await queue.get(job_id or "")
        return row is not None and row["status"] == "succeeded"

    await _run_worker_until(worker, finished)
    events = await runtime.outbox.list(tenant_id=None)
    assert [event["data"] for event in events] == [{"job": job_id}]


async def test_graceful_shutdown_releases_unfinished_jobs(runtime: Runtime) -> None:
    queue = runtime.queue
    started = asyncio.Event()

    async def slow(job: Job, ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    worker = Worker(queue, {"test.slow": slow}, poll_seconds=0.02, shutdown_grace=0.1)
    async with runtime.db.transaction() as conn:
        await queue.enqueue(conn, "test.slow", {})
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 30)
    stop.set()
    await asyncio.wait_for(task, 30)  # the handler sleeps a minute: its grace of 0.1 s ends it
    (row,) = await queue.list()
    assert row["status"] == "queued"
    assert row["attempts"] == 0


async def test_queue_stats_report_depth_and_lag(runtime: Runtime) -> None:
    await _enqueue(runtime.queue, run_at=utcnow() - timedelta(seconds=30))
    stats = await runtime.queue.stats()
    assert ("test.noop", "queued", 1) in stats["counts"]
    assert 29 <= stats["lag_seconds"] < 120


async def test_batch_handler_commits_a_batch_with_per_job_outcomes(runtime: Runtime) -> None:
    from interlink.queue import BatchContext, BatchHandler

    queue = runtime.queue
    batches: list[int] = []

    async def deliver(batch: list[Job], ctx: BatchContext) -> None:
        batches.append(len(batch))
        for job in batch:
            if job.payload["n"] == 3:
                ctx.retry(job, "receiver said 503", 0.0)
            elif job.payload["n"] == 4:
                ctx.bury(job, "endpoint gone")
        async with ctx.transaction() as conn:
            for job in ctx.succeeded:
                await runtime.outbox.emit(
                    conn, "test.delivered", {"n": job.payload["n"]}, tenant_id=None, component="t"
                )

    async with runtime.db.transaction() as conn:
        await queue.enqueue_many(
            conn, [("test.batch", {"n": n}, None, None) for n in range(10)], max_attempts=2
        )
    worker = Worker(queue, {"test.batch": BatchHandler(deliver, max_size=4)}, poll_seconds=0.02)

    async def settled() -> bool:
        # One query: two would miss a job that moves from running to queued in between.
        counts = (await queue.stats())["counts"]
        return not any(status in ("queued", "running") and n for _, status, n in counts)

    await _run_worker_until(worker, settled)
    assert max(batches) <= 4
    delivered = sorted(e["data"]["n"] for e in await runtime.outbox.list(tenant_id=None))
    assert delivered == [0, 1, 2, 5, 6, 7, 8, 9]
    dead = {row["last_error"] for row in await queue.list(status="dead")}
    assert dead == {"receiver said 503", "permanent: endpoint gone"}
    assert len(await queue.list(status="succeeded")) == 8
