"""Jobs handed to this process's worker as they are enqueued, on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from sqlalchemy import update

from interlink.queue import BatchContext, BatchHandler, Job, JobContext, JobQueue, Worker
from interlink.runtime import Runtime
from interlink.store.schema import jobs
from interlink.store.types import utcnow


class _Taker:
    """A taker that records what it is given and starts nothing (a process about to die)."""

    worker_id = "taker-1"

    def __init__(self, room: int) -> None:
        self.room = room
        self.adopted: list[Job] = []

    def spare(self, kind: str) -> int:
        return self.room if kind == "test.noop" else 0

    def adopt(self, jobs: list[Job]) -> None:
        self.adopted.extend(jobs)


@contextlib.asynccontextmanager
async def _running(worker: Worker) -> AsyncIterator[None]:
    """Run ``worker`` for the block (10 s at most), from when it takes jobs at enqueue."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(10):
            while worker.queue.taker is not worker:
                await asyncio.sleep(0.01)
            yield
    finally:
        stop.set()
        await task


async def _enqueue_many(queue: JobQueue, count: int, **kwargs: object) -> list[str | None]:
    items = [("test.noop", {"n": n}, None, None) for n in range(count)]
    async with queue.db.transaction() as conn:
        return await queue.enqueue_many(conn, items, hand_off=True, **kwargs)  # type: ignore[arg-type]


async def test_jobs_up_to_the_takers_room_are_written_leased_to_it(runtime: Runtime) -> None:
    queue, taker = runtime.queue, _Taker(room=3)
    queue.taker = taker
    memos = [f"memo-{n}" for n in range(5)]
    items = [("test.noop", {"n": n}, None, None) for n in range(5)]
    async with runtime.db.transaction() as conn:
        ids = await queue.enqueue_many(conn, items, hand_off=True, memos=memos)
        assert taker.adopted == []  # nothing starts before the commit
    assert [job.id for job in taker.adopted] == ids[:3]
    assert [job.memo for job in taker.adopted] == memos[:3]
    assert all(job.attempts == 1 and job.lease_token for job in taker.adopted)
    rows = {row["id"]: row for row in await queue.list()}
    for job in taker.adopted:
        assert rows[job.id]["status"] == "running"
        assert rows[job.id]["worker_id"] == "taker-1"
        assert rows[job.id]["lease_token"] == job.lease_token
    assert [rows[i]["status"] for i in ids[3:]] == ["queued", "queued"]
    # The queued ones are claimed as usual; the handed-over ones are not claimed again.
    claimed = await queue.claim("w2", ["test.noop"], 10)
    assert {job.id for job in claimed} == set(ids[3:])
    assert await queue.complete_many(taker.adopted) == 3


async def test_nothing_is_handed_over_when_the_transaction_rolls_back(runtime: Runtime) -> None:
    queue, taker = runtime.queue, _Taker(room=10)
    queue.taker = taker
    try:
        async with runtime.db.transaction() as conn:
            await queue.enqueue_many(conn, [("test.noop", {}, None, None)], hand_off=True)
            raise RuntimeError("the caller's change failed")
    except RuntimeError:
        pass
    assert taker.adopted == []
    assert await queue.list() == []


async def test_later_jobs_keyed_jobs_and_other_kinds_are_queued(runtime: Runtime) -> None:
    queue, taker = runtime.queue, _Taker(room=10)
    queue.taker = taker
    await _enqueue_many(queue, 2, run_at=utcnow() + timedelta(hours=1))
    async with runtime.db.transaction() as conn:
        await queue.enqueue_many(conn, [("test.noop", {}, None, "key-1")], hand_off=True)
        await queue.enqueue_many(conn, [("other.kind", {}, None, None)], hand_off=True)
        await queue.enqueue_many(conn, [("test.noop", {}, None, None)])  # not asked to
    assert taker.adopted == []
    assert {row["status"] for row in await queue.list()} == {"queued"}


async def test_a_handed_over_job_whose_process_died_runs_after_its_lease_expires(
    runtime: Runtime,
) -> None:
    queue, taker = runtime.queue, _Taker(room=1)
    queue.taker = taker
    (job_id,) = await _enqueue_many(queue, 1)
    queue.taker = None  # the process that held it is gone; its lease runs out
    async with runtime.db.transaction() as conn:
        await conn.execute(update(jobs).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert await queue.reap_expired() == 1
    ran: list[Job] = []

    async def record(job: Job, ctx: JobContext) -> None:
        ran.append(job)

    async with _running(Worker(queue, {"test.noop": record}, poll_seconds=0.02)):
        while not ran:
            await asyncio.sleep(0.02)
    assert [job.id for job in ran] == [job_id]
    assert ran[0].attempts == 2  # the lost first attempt counts
    assert ran[0].memo is None  # a claimed job carries nothing from the enqueuer
    (row,) = await queue.list()
    assert row["status"] == "succeeded"


async def test_a_running_worker_takes_jobs_at_enqueue_and_stops_taking_when_stopped(
    runtime: Runtime,
) -> None:
    queue = runtime.queue
    ran: list[Job] = []
    done = asyncio.Event()

    async def record(job: Job, ctx: JobContext) -> None:
        ran.append(job)
        done.set()

    # A poll far longer than the test: only the hand-over can start the job in time.
    worker = Worker(queue, {"test.noop": record}, poll_seconds=60)
    async with _running(worker):
        queue.wake = lambda: None  # type: ignore[method-assign]  # no wake-up either
        (job_id,) = await _enqueue_many(queue, 1)
        await done.wait()
    assert [job.id for job in ran] == [job_id]
    assert ran[0].attempts == 1
    assert queue.taker is None
    assert worker.spare("test.noop") == 0
    (row,) = await queue.list()
    assert row["status"] == "succeeded"
    assert row["attempts"] == 1


async def test_a_finished_job_is_marked_done_at_once_even_with_a_long_poll(
    runtime: Runtime,
) -> None:
    # The worker no longer claims after every finished job (nothing new is due then), but the
    # jobs it finished must still be marked done long before their lease runs out.
    queue = runtime.queue

    async def noop(job: Job, ctx: JobContext) -> None:
        return None

    async with _running(Worker(queue, {"test.noop": noop}, poll_seconds=60)):
        (job_id,) = await _enqueue_many(queue, 1)
        # Within a few seconds, far below both the 60 s poll and the lease: a worker that only
        # recorded the outcome at its next poll would fail here instead of passing slowly.
        async with asyncio.timeout(5):
            while (await queue.get(job_id) or {}).get("status") != "succeeded":
                await asyncio.sleep(0.02)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


class _Gated:
    """A batch handler that records each batch, then waits for ``release`` (and gives its
    slots back) and for ``finish`` before it completes the batch; with ``first_only``, the
    batches after the first complete at once."""

    def __init__(self, *, first_only: bool = False) -> None:
        self.first_only = first_only
        self.started: list[list[str]] = []
        self.release, self.finish = asyncio.Event(), asyncio.Event()

    async def __call__(self, batch: list[Job], ctx: BatchContext) -> None:
        self.started.append([job.id for job in batch])
        if not self.first_only or len(self.started) == 1:
            await self.release.wait()
            ctx.release_slots()
            ctx.release_slots()  # a second call changes nothing
            await self.finish.wait()
        async with ctx.transaction():
            pass


async def test_a_batch_that_released_its_slots_makes_room_for_as_many_again(
    runtime: Runtime,
) -> None:
    # A batch whose requests are done but whose outcomes still wait for a group commit gives
    # its slots back (ctx.release_slots): new jobs start beside it, up to the concurrency
    # again, and no further while the released ones are still in flight. Beyond the slots,
    # jobs handed over wait in the worker's line (as many as the concurrency).
    queue = runtime.queue
    gated = _Gated()
    started, release, finish = gated.started, gated.release, gated.finish
    handler = BatchHandler(gated, max_size=2)
    worker = Worker(queue, {"test.noop": handler}, concurrency=2, poll_seconds=60)
    async with _running(worker):
        first = await _enqueue_many(queue, 2)
        await _until(lambda: len(started) == 1)
        assert worker.spare("test.noop") == 2  # both slots working: the line's places only
        release.set()
        await _until(lambda: worker.spare("test.noop") == 4)
        second = await _enqueue_many(queue, 3)
        await _until(lambda: len(started) == 2)
        assert started == [first, second[:2]]
        # Two jobs released, two more working: the fifth waits in the line, leased.
        await _until(lambda: worker.spare("test.noop") == 1)
        rows = {row["id"]: row["status"] for row in await queue.list()}
        assert rows[second[2]] == "running"
        assert len(started) == 2
        finish.set()
        await _until(lambda: len(started) == 3)
        assert started[2] == [second[2]]
        while {row["status"] for row in await queue.list()} != {"succeeded"}:
            await asyncio.sleep(0.02)
    assert worker.spare("test.noop") == 0  # stopped: it takes nothing more


async def test_jobs_beyond_the_slots_wait_in_line_then_in_the_table(runtime: Runtime) -> None:
    # One slot, so one place in the line: of three jobs enqueued for hand-over, the first
    # runs, the second waits leased in the line and starts as soon as the slot frees (no
    # claim, its memo kept), the third is left queued in the table and claimed after.
    queue = runtime.queue
    ran: list[tuple[str, object]] = []
    gate = asyncio.Event()

    async def hold(job: Job, ctx: JobContext) -> None:
        ran.append((job.id, job.memo))
        await gate.wait()

    worker = Worker(queue, {"test.noop": hold}, concurrency=1, poll_seconds=60)
    async with _running(worker):
        # The table's job is not signalled, so nothing claims it before the line's job starts
        # (a signalled one would get its share first: the last test of this file).
        queue.wake = lambda: None  # type: ignore[method-assign]
        ids = await _enqueue_many(queue, 3, memos=["m0", "m1", "m2"])
        await _until(lambda: len(ran) == 1)
        rows = {row["id"]: row for row in await queue.list()}
        assert [rows[i]["status"] for i in ids] == ["running", "running", "queued"]
        assert rows[ids[1]]["worker_id"] == worker.worker_id
        assert worker.spare("test.noop") == 0
        gate.set()
        await _until(lambda: len(ran) == 3)
    # The one in line first, with its memo; the one from the table after, claimed (no memo).
    assert ran == [(ids[0], "m0"), (ids[1], "m1"), (ids[2], None)]


async def test_jobs_waiting_in_line_keep_their_lease_and_go_back_at_shutdown(
    runtime: Runtime,
) -> None:
    # A job that waits in the line longer than its lease is renewed with the running ones
    # (the reaper leaves it alone); at shutdown it goes back to the queue, attempt uncounted.
    queue = JobQueue(runtime.db, lease_seconds=1)
    gate = asyncio.Event()
    ran: list[str] = []

    async def hold(job: Job, ctx: JobContext) -> None:
        ran.append(job.id)
        await gate.wait()

    worker = Worker(queue, {"test.noop": hold}, concurrency=1, poll_seconds=60,
                    shutdown_grace=0.1)  # fmt: skip
    async with _running(worker):
        (first,) = await _enqueue_many(queue, 1)
        await _until(lambda: len(ran) == 1)
        (waiting,) = await _enqueue_many(queue, 1)  # a lease of its own, not the running one's
        row = await queue.get(waiting or "")
        assert row is not None and row["status"] == "running"
        first_lease = row["lease_expires_at"]
        # Until the first lease has run out and a renewal (every third of it) holds the job,
        # however slowly a loaded machine runs them: never, were waiting jobs not renewed.
        async with asyncio.timeout(30):
            while not (utcnow() > first_lease and row["lease_expires_at"] > utcnow()):
                await asyncio.sleep(0.05)
                row = await queue.get(waiting or "") or row
                assert row["status"] == "running", "the waiting job's lease ran out"
        assert await queue.reap_expired() == 0
        row = await queue.get(waiting or "")
        assert row is not None and row["status"] == "running"
    assert ran == [first]
    row = await queue.get(waiting or "")
    assert row is not None
    assert (row["status"], row["attempts"], row["lease_token"]) == ("queued", 0, None)


async def test_a_worker_that_claims_from_the_table_claims_again_when_a_batch_releases(
    runtime: Runtime,
) -> None:
    # A worker in its own process (`interlink worker`) gets nothing handed over: it claims.
    # With every slot taken it must claim again as soon as a batch gives its slots back, not
    # when the batch's outcomes are written or at the next poll (60 s here).
    queue = runtime.queue
    gated = _Gated(first_only=True)
    started, release, finish = gated.started, gated.release, gated.finish
    worker = Worker(
        queue, {"test.noop": BatchHandler(gated, max_size=2)}, concurrency=2, poll_seconds=60
    )
    async with _running(worker):
        queue.taker = None  # no hand-over: as in a process apart from the API
        first = await _enqueue_many(queue, 2)
        await _until(lambda: len(started) == 1)
        second = await _enqueue_many(queue, 2)
        await asyncio.sleep(0.1)
        assert len(started) == 1  # both slots working: nothing claimed
        release.set()
        async with asyncio.timeout(30):  # half the poll: woken by the release, not the poll
            await _until(lambda: len(started) == 2)
        assert [set(batch) for batch in started] == [set(first), set(second)]
        finish.set()
        while {row["status"] for row in await queue.list()} != {"succeeded"}:
            await asyncio.sleep(0.02)


async def test_the_line_leaves_slots_to_jobs_due_in_the_table(runtime: Runtime) -> None:
    # Under load the line refills as fast as it empties; a job due in the table (a retry,
    # another kind) must still get a slot: while one is signalled, a quarter of the slots
    # that free go to the claim, not to the line.
    queue = runtime.queue
    started: list[str] = []
    slots = asyncio.Semaphore(0)

    async def hold(job: Job, ctx: JobContext) -> None:
        started.append(job.id)
        await slots.acquire()

    worker = Worker(queue, {"test.noop": hold}, concurrency=4, poll_seconds=60)
    async with _running(worker):
        running = await _enqueue_many(queue, 4)
        await _until(lambda: len(started) == 4)
        lined = await _enqueue_many(queue, 4)  # every slot taken: they wait in the line
        assert worker.spare("test.noop") == 0
        async with queue.db.transaction() as conn:  # due in the table, not handed over
            (in_table,) = await queue.enqueue_many(conn, [("test.noop", {}, None, None)])
        slots.release()  # one running job ends: its slot goes to the claim
        await _until(lambda: len(started) == 5)
        assert started[4] == in_table
        for _ in range(8):
            slots.release()
        await _until(lambda: len(started) == 9)
        assert started[5:] == lined  # then the line, oldest first
    assert set(started[:4]) == set(running)
