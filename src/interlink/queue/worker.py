"""The worker: claims due jobs, runs their handlers concurrently, renews leases, reaps the dead.

A handler is ``async def handler(job, ctx) -> None``. Returning completes the job; raising
``RetryJob`` reschedules it; ``PermanentJobError`` buries it; any other exception is retried
with exponential backoff until the job's attempts are spent. A handler whose work is a database
change should make it inside ``ctx.transaction()``: the job is marked done in that same
transaction, so the change commits exactly once even if the worker dies and the job reruns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.queue.jobs import NOTIFY_CHANNEL, Job, JobQueue, LeaseLost
from interlink.store.database import StoreUnavailable, on_commit
from interlink.store.notify import listen
from interlink.store.types import utcnow

if TYPE_CHECKING:
    from interlink.observability.metrics import Metrics

__all__ = [
    "BatchContext",
    "BatchHandler",
    "HourlyWork",
    "JobContext",
    "JobHandler",
    "PermanentJobError",
    "RetryJob",
    "Worker",
    "hourly_handler",
]

log = structlog.get_logger("interlink.worker")


class RetryJob(Exception):
    """Ask for another attempt after ``delay`` seconds (counts as a failed attempt)."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class PermanentJobError(Exception):
    """The job can never succeed; bury it without further attempts."""


class JobContext:
    """What a handler gets beside its job: the queue and a completing transaction."""

    def __init__(self, job: Job, queue: JobQueue) -> None:
        self.job = job
        self.queue = queue
        self.completed = False

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that also marks the job done; raises LeaseLost if the lease is gone."""
        async with self.queue.db.transaction() as conn:
            yield conn
            await self.queue.complete_in(conn, self.job)
        self.completed = True


JobHandler = Callable[[Job, JobContext], Awaitable[None]]
HourlyWork = Callable[[], Awaitable[object]]


def hourly_handler(queue: JobQueue, kind: str, work: HourlyWork) -> JobHandler:
    """The handler of ``kind``, a job that runs once an hour per deployment
    (:meth:`JobQueue.enqueue_hourly`): it asks for the next hour's run first, committed apart
    from the job, so that a run that fails (retried, or in the end dead) does not end the
    chain; then it does ``work``."""

    async def handle(job: Job, ctx: JobContext) -> None:
        await queue.enqueue_hourly(kind, utcnow() + timedelta(hours=1))
        await work()

    return handle


class BatchContext:
    """What a batch handler gets: its jobs, per-job outcomes, and one completing transaction."""

    def __init__(
        self, jobs: list[Job], queue: JobQueue, release: Callable[[], None] | None = None
    ) -> None:
        self.jobs = jobs
        self.queue = queue
        self.completed = False
        self.outcomes: dict[str, tuple[str, float | None]] = {}
        self._release = release

    def release_slots(self) -> None:
        """The handler's own work is done; only the write of its outcomes is left.

        The batch's jobs stay leased and in flight until they are completed, but stop counting
        against the worker's concurrency, so that new jobs (handed over at enqueue, above all)
        can start while a group commit writes these. The worker lets as many jobs again wait
        this way, no more. Calling it twice, or outside a worker, does nothing.
        """
        if self._release is not None:
            self._release()
            self._release = None

    def retry(self, job: Job, reason: str, delay: float) -> None:
        """This job failed; try it again after ``delay`` seconds (the others are unaffected)."""
        self.outcomes[job.id] = (reason, delay)

    def bury(self, job: Job, reason: str) -> None:
        """This job can never succeed."""
        self.outcomes[job.id] = (reason, None)

    @property
    def succeeded(self) -> list[Job]:
        return [job for job in self.jobs if job.id not in self.outcomes]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that also marks every job without a failed outcome done.

        Record outcomes (``retry``/``bury``) before the block ends. If any of those jobs'
        leases was lost, the whole transaction rolls back (``LeaseLost``) and the batch reruns.
        """
        async with self.queue.db.transaction() as conn:
            yield conn
            await self.complete_in(conn)

    async def complete_in(self, conn: AsyncConnection) -> None:
        """Mark the jobs without a failed outcome done in ``conn``'s transaction.

        For handlers that share one transaction between several batches (a group commit);
        ``completed`` turns true once that transaction commits. Raises ``LeaseLost`` if any of
        those jobs' leases was lost, so that the caller rolls back.
        """
        done = self.succeeded
        if await self.queue.complete_many_in(conn, done) != len(done):
            raise LeaseLost("a job of the batch is no longer leased to this worker")
        on_commit(conn, self._mark_completed)

    def _mark_completed(self) -> None:
        self.completed = True


@dataclass(frozen=True)
class BatchHandler:
    """Run jobs of one kind together: one call, one transaction, for up to ``max_size`` jobs.

    For hot paths (webhook deliveries, inbound processing) where a transaction per job would
    cost more than the work itself.
    """

    handle: Callable[[list[Job], BatchContext], Awaitable[None]]
    max_size: int = 100
    # Jobs of different groups never share a batch (each batch is finished, recorded and its
    # slots freed on its own): outbound groups by endpoint, so that a slow receiver holds up
    # only its own deliveries.
    group: Callable[[Job], Hashable] | None = None


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 3600.0) -> float:
    """Full-jitter exponential backoff for a job's ``attempt``-th failure."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


class Worker:
    """Runs jobs of the kinds it has handlers for until ``stop`` is set."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, JobHandler | BatchHandler],
        *,
        concurrency: int = 32,
        poll_seconds: float = 1.0,
        shutdown_grace: float = 10.0,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        listen_url: str | None = None,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.shutdown_grace = shutdown_grace
        self.metrics = metrics
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.listen_url = listen_url
        self._wake = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], list[Job]] = {}
        # Jobs in flight that count against the concurrency, and those whose handler released
        # its slots and only waits for its outcomes to be written (BatchContext.release_slots).
        self._inflight_jobs = 0
        self._released: set[asyncio.Task[None]] = set()
        self._released_jobs = 0
        # Set when a batch releases its slots: room to claim that no finished task announces.
        self._freed = asyncio.Event()
        # Jobs handed over at enqueue with no slot free yet: leased to this worker, they wait
        # here, up to as many as the concurrency, and start as slots free (before any claim).
        # Beyond that they are left in the table. One that waits here costs no claim and no
        # read of what its enqueuer already knew (its memo).
        self._waiting: deque[Job] = deque()
        # Whether the last claim filled its batch (more may be due in the table), and when it
        # ran: while jobs may be due there, the line leaves the claim its share of the slots.
        self._table_full = False
        self._claimed_at = 0.0
        self._stopping = False
        self._done: list[Job] = []
        self._low_water = max(1, concurrency // 4)
        queue.add_wake_listener(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def spare(self, kind: str) -> int:
        """Room for jobs of ``kind`` handed over at enqueue (:class:`JobTaker`): free slots and
        free places in the waiting line."""
        if self.queue.taker is not self or kind not in self.handlers or self._stopping:
            return 0
        return max(0, self._room() + self.concurrency - len(self._waiting))

    def _room(self) -> int:
        """Free slots: at most ``concurrency`` jobs working, and as many again released."""
        working, released = self._inflight_jobs, self._released_jobs
        return max(0, min(self.concurrency - working, 2 * self.concurrency - working - released))

    def adopt(self, jobs: list[Job]) -> None:
        """Start jobs committed already leased to this worker (:class:`JobTaker`), or line
        them up until slots free."""
        self._waiting.extend(jobs)
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Start as many waiting jobs as there are free slots, oldest first. While jobs may be
        due in the table (the last claim filled its batch, new work was signalled since, or a
        poll interval has passed) a quarter of the slots is left to the claim, so that the
        line, refilled as fast as it empties under load, cannot starve retries and other
        kinds of job."""
        if self._stopping or not self._waiting:
            return
        free = self._room()
        if (
            self._table_full
            or self._wake.is_set()
            or time.monotonic() - self._claimed_at >= self.poll_seconds
        ):
            free -= self._low_water
        free = min(free, len(self._waiting))
        if free > 0:
            self._start_all([self._waiting.popleft() for _ in range(free)])

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or release what is in flight."""
        if not self.handlers:
            await stop.wait()
            return
        helpers = [
            asyncio.create_task(self._renew_leases(stop), name="lease-renewal"),
            asyncio.create_task(self._reap(stop), name="reaper"),
        ]
        if self.listen_url:
            helpers.append(asyncio.create_task(self._listen(stop), name="listen"))
        stop_wait = asyncio.create_task(stop.wait())
        self._stopping = False  # run again by its supervisor after a failure
        if self.queue.taker is None:
            self.queue.taker = self
        try:
            while not stop.is_set():
                await self._flush_done()
                self._start_waiting()
                free = self._room()
                # Claim in batches: one claim query per few finished jobs, not per job.
                if free < self._low_water and self._inflight:
                    # Until a task ends or a batch gives its slots back (after its requests,
                    # before its outcomes are written): claiming waits for neither.
                    self._freed.clear()
                    await self._wait_any(stop_wait, self._freed.wait())
                    continue
                self._wake.clear()
                try:
                    claimed = await self.queue.claim(self.worker_id, self.handlers, free)
                except StoreUnavailable as error:
                    log.warning("claim failed", error=str(error))
                    await self._wait_any(stop_wait)
                    continue
                self._table_full, self._claimed_at = len(claimed) >= free, time.monotonic()
                self._start_all(claimed)
                self._start_waiting()  # what the claim left of the share it was kept
                if len(claimed) < free:
                    # Nothing more is due: sleep until new work or the poll. A finished job
                    # makes nothing due, so it is no reason to claim again (with jobs handed
                    # over at enqueue, that claim would find nothing almost every time).
                    await self._wait_any(stop_wait, self._wake.wait(), inflight=False)
        finally:
            self._stopping = True
            if self.queue.taker is self:
                self.queue.taker = None
            await self._shutdown()
            for task in helpers:
                task.cancel()
            stop_wait.cancel()
            await asyncio.gather(*helpers, stop_wait, return_exceptions=True)

    async def _wait_any(
        self,
        stop_wait: asyncio.Task[bool],
        extra: Awaitable[object] | None = None,
        *,
        inflight: bool = True,
    ) -> None:
        """Wait for stop, ``extra``, the poll interval or (with ``inflight``) a finished job,
        whichever is first."""
        waiter = asyncio.ensure_future(extra) if extra is not None else None
        watched: set[asyncio.Future[Any]] = {stop_wait, *(self._inflight if inflight else ())}
        if waiter is not None:
            watched.add(waiter)
        try:
            await asyncio.wait(
                watched, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if waiter is not None:
                waiter.cancel()

    def _start_all(self, claimed: list[Job]) -> None:
        batches: dict[tuple[str, Hashable], list[Job]] = {}
        for job in claimed:
            if self.metrics:
                self.metrics.jobs_claimed.labels(job.kind).inc()
                self.metrics.job_claim_lag.labels(job.kind).observe(
                    max(0.0, (utcnow() - job.run_at).total_seconds())
                )
            handler = self.handlers[job.kind]
            if isinstance(handler, BatchHandler):
                key = (job.kind, handler.group(job) if handler.group else None)
                batch = batches.setdefault(key, [])
                batch.append(job)
                if len(batch) >= handler.max_size:
                    self._track(self._execute_batch(handler, batches.pop(key)), batch)
            else:
                self._track(self._execute(job, handler), [job])
        for (kind, _), batch in batches.items():
            handler = self.handlers[kind]
            assert isinstance(handler, BatchHandler)
            self._track(self._execute_batch(handler, batch), batch)

    def _track(self, work: Awaitable[None], jobs: list[Job]) -> None:
        task = asyncio.ensure_future(work)
        self._inflight[task] = jobs
        self._inflight_jobs += len(jobs)
        task.add_done_callback(self._forget)

    def _release(self, task: asyncio.Task[None]) -> None:
        jobs = self._inflight.get(task)
        if jobs is not None and task not in self._released:
            self._released.add(task)
            self._inflight_jobs -= len(jobs)
            self._released_jobs += len(jobs)
            self._freed.set()
            self._start_waiting()

    def _forget(self, task: asyncio.Task[None]) -> None:
        jobs = self._inflight.pop(task, None)
        if jobs is not None:
            if task in self._released:
                self._released.discard(task)
                self._released_jobs -= len(jobs)
            else:
                self._inflight_jobs -= len(jobs)
            self._start_waiting()
        if self._done:
            self._wake.set()  # finished jobs to mark done: the loop does it before their lease ends

    async def _execute_batch(self, handler: BatchHandler, jobs: list[Job]) -> None:
        task = asyncio.current_task()
        release = None if task is None else functools.partial(self._release, task)
        ctx = BatchContext(jobs, self.queue, release)
        kind = jobs[0].kind
        started = time.perf_counter()
        bound = log.bind(kind=kind, batch=len(jobs))
        try:
            await handler.handle(jobs, ctx)
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            bound.warning("a lease was lost; the batch will rerun")
            for job in jobs:
                await self._guard(self.queue.retry_later(job, 0, "lease lost in batch"))
            return
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            for job in jobs:
                await self._fail(job, bound, reason, backoff_delay(job.attempts))
            return
        finally:
            if self.metrics:
                self.metrics.job_duration.labels(kind).observe(time.perf_counter() - started)
        for job in jobs:
            outcome = ctx.outcomes.get(job.id)
            if outcome is None:
                if not ctx.completed:
                    self._done.append(job)
                self._count("succeeded", job)
            elif outcome[1] is None:
                await self._guard(self.queue.bury(job, f"permanent: {outcome[0]}"))
                self._count("dead", job)
            else:
                await self._fail(job, bound, outcome[0], outcome[1])
        if len(self._done) >= 64:
            await self._flush_done()

    async def _execute(self, job: Job, handler: JobHandler) -> None:
        ctx = JobContext(job, self.queue)
        started = time.perf_counter()
        bound = log.bind(job_id=job.id, kind=job.kind, attempt=job.attempts)
        try:
            await handler(job, ctx)
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            bound.warning("lease lost; another worker owns the job now")
            return
        except PermanentJobError as error:
            bound.error("job failed permanently", error=str(error))
            await self._guard(self.queue.bury(job, f"permanent: {error}"))
            self._count("dead", job)
            return
        except RetryJob as error:
            await self._fail(job, bound, str(error), error.delay)
            return
        except Exception as error:
            await self._fail(
                job, bound, f"{type(error).__name__}: {error}", backoff_delay(job.attempts)
            )
            return
        finally:
            if self.metrics:
                self.metrics.job_duration.labels(job.kind).observe(time.perf_counter() - started)
        if not ctx.completed:
            self._done.append(job)
            if len(self._done) >= 64:
                await self._flush_done()
        self._count("succeeded", job)

    async def _fail(
        self, job: Job, bound: structlog.typing.FilteringBoundLogger, error: str, delay: float
    ) -> None:
        self._count("failed", job)
        status = await self._guard(self.queue.retry_later(job, delay, error))
        if status == "dead":
            self._count("dead", job)
            bound.error("job exhausted its attempts", error=error)
        else:
            bound.warning("job attempt failed", error=error, retry_in=round(delay, 3))
            if status == "queued" and delay < self.poll_seconds:
                # Due before the next poll: wake up for it then (nothing else would).
                asyncio.get_running_loop().call_later(max(0.0, delay), self.wake)

    async def _guard(self, operation: Awaitable[object]) -> object:
        # A store outage while recording an outcome leaves the lease to expire: the job reruns.
        try:
            return await operation
        except StoreUnavailable as error:
            log.warning("could not record job outcome", error=str(error))
            return None

    def _count(self, outcome: str, job: Job) -> None:
        if not self.metrics:
            return
        counter = {
            "succeeded": self.metrics.jobs_succeeded,
            "failed": self.metrics.jobs_failed,
            "dead": self.metrics.jobs_dead,
        }[outcome]
        counter.labels(job.kind).inc()

    async def _flush_done(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        try:
            await self.queue.complete_many(done)
        except StoreUnavailable as error:
            log.warning("could not mark jobs done; they will rerun", error=str(error))

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        interval = self.queue.lease_seconds / 3
        while not stop.is_set():
            await asyncio.sleep(interval)
            held = [job for jobs in self._inflight.values() for job in jobs]
            tokens = sorted({job.lease_token for job in [*held, *self._waiting] if job.lease_token})
            try:
                await self.queue.renew(tokens)
            except StoreUnavailable as error:
                log.warning("lease renewal failed", error=str(error))

    async def _reap(self, stop: asyncio.Event) -> None:
        interval = max(1.0, min(10.0, self.queue.lease_seconds / 2))
        while not stop.is_set():
            try:
                reaped = await self.queue.reap_expired()
                if reaped:
                    log.info("requeued jobs whose lease expired", count=reaped)
            except StoreUnavailable as error:
                log.warning("reaper failed", error=str(error))
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))

    async def _listen(self, stop: asyncio.Event) -> None:
        assert self.listen_url is not None
        await listen(self.listen_url, NOTIFY_CHANNEL, self.wake, stop, retry=self.poll_seconds)

    async def _shutdown(self) -> None:
        if self._waiting:
            # Never started: back to the queue at once, the attempt not counted.
            waiting, self._waiting = list(self._waiting), deque()
            await self._guard(self.queue.release(waiting))
        if self._inflight:
            log.info("finishing jobs in flight", count=self._inflight_jobs + self._released_jobs)
            _, pending = await asyncio.wait(
                set(self._inflight), timeout=self.shutdown_grace or None
            )
            unfinished = [
                job for task in pending if task in self._inflight for job in self._inflight[task]
            ]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._guard(self.queue.release(unfinished))
        await self._flush_done()
