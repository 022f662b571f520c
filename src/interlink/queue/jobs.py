"""Job rows: enqueue in the caller's transaction, claim, renew, complete, retry, bury, reap."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Update, and_, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import id_floor, new_id, random_bytes
from interlink.store.database import Database, on_commit, pipelined, signal_on_commit
from interlink.store.direct import write_many
from interlink.store.retention import BATCH, delete_in_batches
from interlink.store.schema import jobs
from interlink.store.types import utcnow

__all__ = ["NOTIFY_CHANNEL", "Job", "JobQueue", "JobStatus", "JobTaker", "LeaseLost"]

NOTIFY_CHANNEL = "interlink_jobs"
_ERROR_LIMIT = 2000

# Built once: a new insert() per call would cost a cache key each time.
_INSERT = pipelined(jobs.insert())


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


class LeaseLost(Exception):
    """The job's lease expired and another worker may hold it; its work must not commit."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    tenant_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    lease_token: str | None
    idempotency_key: str | None
    created_at: datetime
    # What the enqueuer handed along to a worker of this process (never stored): see hand_off.
    memo: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any], memo: Any = None) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            tenant_id=row["tenant_id"],
            payload=row["payload"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            run_at=row["run_at"],
            lease_token=row["lease_token"],
            idempotency_key=row["idempotency_key"],
            created_at=row["created_at"],
            memo=memo,
        )


class JobTaker(Protocol):
    """A worker in this process that takes jobs leased to it as they are enqueued.

    A job handed over this way skips the claim: it is written already leased (``running``,
    first attempt, this worker's lease) and starts when its transaction commits. Should this
    process die first, the lease expires and the reaper queues the job again, as for any job
    whose worker died.
    """

    worker_id: str

    def spare(self, kind: str) -> int:
        """How many more jobs of ``kind`` it would take now, to start at once or as soon as it
        has room (0: it does not run that kind)."""
        ...

    def adopt(self, jobs: list[Job]) -> None:
        """Take ``jobs``, committed already leased to it: start them, or keep them (their
        leases renewed) until it has room."""
        ...


_JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.tenant_id,
    jobs.c.payload,
    jobs.c.attempts,
    jobs.c.max_attempts,
    jobs.c.run_at,
    jobs.c.lease_token,
    jobs.c.idempotency_key,
    jobs.c.created_at,
)


# The hot statements, built once: building one per call costs about as much as running it.
_CLAIM = (
    update(jobs)
    .where(
        jobs.c.id.in_(
            select(jobs.c.id)
            .where(
                jobs.c.status == JobStatus.QUEUED.value,
                jobs.c.run_at <= bindparam("now"),
                jobs.c.kind.in_(bindparam("kinds", expanding=True)),
            )
            .order_by(jobs.c.run_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        status=JobStatus.RUNNING.value,
        attempts=jobs.c.attempts + 1,
        lease_token=bindparam("token"),
        lease_expires_at=bindparam("expires"),
        worker_id=bindparam("worker_id"),
        updated_at=bindparam("now"),
    )
    .returning(*_JOB_COLUMNS)
)


def _complete_many(ids: ColumnElement[bool], tokens: ColumnElement[bool]) -> Update:
    """Mark the running jobs named by ``ids`` and held under ``tokens`` succeeded."""
    running = jobs.c.status == JobStatus.RUNNING.value
    done = JobStatus.SUCCEEDED.value
    return (
        update(jobs)
        .where(ids, tokens, running)
        .values(status=done, finished_at=bindparam("now"), updated_at=bindparam("now"))
    )


_COMPLETE_MANY = _complete_many(
    jobs.c.id.in_(bindparam("ids", expanding=True)),
    jobs.c.lease_token.in_(bindparam("tokens", expanding=True)),
)
# On PostgreSQL the ids and tokens go as two arrays: an IN list of n values is a statement of
# its own for each n, which every pooled connection prepares (a round trip) and plans again.
_IDS = postgresql.ARRAY(jobs.c.id.type)
_COMPLETE_MANY_PG = _complete_many(
    jobs.c.id == any_(bindparam("ids", type_=_IDS)),
    jobs.c.lease_token == any_(bindparam("tokens", type_=_IDS)),
)


class JobQueue:
    """The job table's operations. Enqueue joins the caller's transaction; the rest run alone."""

    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 30.0,
        max_attempts: int = 10,
    ) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._wake_listeners: list[Callable[[], None]] = []
        self.taker: JobTaker | None = None

    def add_wake_listener(self, listener: Callable[[], None]) -> None:
        """Called after a transaction that enqueued jobs commits (in this process)."""
        self._wake_listeners.append(listener)

    def wake(self) -> None:
        """Tell this process's workers that jobs were committed."""
        for listener in self._wake_listeners:
            listener()

    async def enqueue(
        self,
        conn: AsyncConnection,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant_id: str | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
    ) -> str | None:
        """Write a job in ``conn``'s transaction; None when the idempotency key already exists."""
        ids = await self.enqueue_many(
            conn,
            [(kind, payload, tenant_id, idempotency_key)],
            run_at=run_at,
            max_attempts=max_attempts,
        )
        return ids[0]

    async def enqueue_hourly(self, kind: str, at: datetime) -> None:
        """Enqueue job ``kind`` (no payload) for the start of the hour containing ``at``, or now
        if that has passed, in a transaction of its own, once however many processes ask: the
        idempotency key names the hour. A job that enqueues its next hour this way runs once an
        hour per deployment.

        Due now rather than at the hour's start, the run asked for at start-up does not count
        as having waited since then (claim lag, ``interlink_queue_lag_seconds``)."""
        hour = at.replace(minute=0, second=0, microsecond=0)
        async with self.db.transaction() as conn:
            await self.enqueue(
                conn,
                kind,
                {},
                run_at=max(hour, utcnow()),
                idempotency_key=f"{kind}:{hour.isoformat()}",
            )

    async def enqueue_many(
        self,
        conn: AsyncConnection,
        items: Sequence[tuple[str, dict[str, Any], str | None, str | None]],
        *,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        hand_off: bool = False,
        memos: Sequence[Any] | None = None,
    ) -> list[str | None]:
        """Write several jobs ``(kind, payload, tenant_id, idempotency_key)`` at once.

        With ``hand_off``, jobs due now go to this process's :class:`JobTaker` (as many as it
        has room for), leased to it in this transaction and started as soon as it commits:
        no claim, no wait for a poll. The rest are queued as usual. ``memos`` (one per item)
        travel with the jobs handed over, as :attr:`Job.memo`, so that the handler need not
        read back what the enqueuer knew; a job claimed from the table has none.
        """
        if not items:
            return []
        rows = self.rows(items, run_at=run_at, max_attempts=max_attempts)
        if hand_off and run_at is None and self.taker is not None:
            taker, adopted = self.taker, self._lease(rows, self.taker, memos)
            if adopted:
                on_commit(conn, lambda: taker.adopt(adopted))
        if any(row["idempotency_key"] for row in rows):
            insert = postgresql.insert if self.db.is_postgres else sqlite.insert
            stmt = insert(jobs).on_conflict_do_nothing().returning(jobs.c.id)
            created = set()
            for row in rows:  # one by one so that each conflict is known
                result = await conn.execute(stmt, row)
                if result.scalar_one_or_none() is not None:
                    created.add(row["id"])
            ids: list[str | None] = [row["id"] if row["id"] in created else None for row in rows]
        else:
            await write_many(conn, _INSERT, rows)
            ids = [row["id"] for row in rows]
        if any(ids[n] for n, row in enumerate(rows) if row["status"] == JobStatus.QUEUED.value):
            await self._signal(conn)
        return ids

    def _lease(
        self, rows: list[dict[str, Any]], taker: JobTaker, memos: Sequence[Any] | None
    ) -> list[Job]:
        """Mark as many of ``rows`` as ``taker`` has room for leased to it; returns those jobs."""
        now = utcnow()
        token = random_bytes(16).hex()
        expires = now + timedelta(seconds=self.lease_seconds)
        room: dict[str, int] = {}
        adopted = []
        for index, row in enumerate(rows):
            kind = row["kind"]
            if kind not in room:
                room[kind] = taker.spare(kind)
            if row["idempotency_key"] is not None or room[kind] <= 0:
                continue
            room[kind] -= 1
            row.update(
                status=JobStatus.RUNNING.value,
                attempts=1,
                lease_token=token,
                lease_expires_at=expires,
                worker_id=taker.worker_id,
            )
            adopted.append(Job.from_row(row, memos[index] if memos is not None else None))
        return adopted

    def rows(
        self,
        items: Sequence[tuple[str, dict[str, Any], str | None, str | None]],
        *,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
    ) -> list[dict[str, Any]]:
        """The ``jobs`` rows of ``items``, for a caller that writes them itself (then calls
        :meth:`wake` after its commit)."""
        now = utcnow()
        return [
            {
                "id": new_id("job"),
                "kind": kind,
                "tenant_id": tenant_id,
                "payload": payload,
                "status": JobStatus.QUEUED.value,
                "run_at": run_at or now,
                "attempts": 0,
                "max_attempts": max_attempts or self.max_attempts,
                "lease_token": None,
                "lease_expires_at": None,
                "worker_id": None,
                "idempotency_key": key,
                "created_at": now,
                "updated_at": now,
            }
            for kind, payload, tenant_id, key in items
        ]

    async def _signal(self, conn: AsyncConnection) -> None:
        await signal_on_commit(conn, NOTIFY_CHANNEL, self.wake, postgres=self.db.is_postgres)

    async def claim(self, worker_id: str, kinds: Iterable[str], limit: int) -> list[Job]:
        """Lease up to ``limit`` due jobs of ``kinds`` to ``worker_id``."""
        kinds = list(kinds)
        if limit <= 0 or not kinds:
            return []
        now = utcnow()
        values = {
            "kinds": kinds,
            "now": now,
            "limit": limit,
            "token": random_bytes(16).hex(),
            "expires": now + timedelta(seconds=self.lease_seconds),
            "worker_id": worker_id,
        }
        async with self.db.transaction() as conn:
            result = await conn.execute(_CLAIM, values)
            claimed = [Job.from_row(row) for row in result.mappings()]
        claimed.sort(key=lambda job: job.run_at)
        return claimed

    async def renew(self, tokens: Sequence[str]) -> None:
        """Extend the leases of the claim batches named by ``tokens``."""
        if not tokens:
            return
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.lease_token.in_(tokens), jobs.c.status == JobStatus.RUNNING.value)
                .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
            )

    def _held(self, job: Job) -> Any:
        return and_(
            jobs.c.id == job.id,
            jobs.c.lease_token == job.lease_token,
            jobs.c.status == JobStatus.RUNNING.value,
        )

    async def complete_in(self, conn: AsyncConnection, job: Job) -> None:
        """Mark ``job`` succeeded inside ``conn``'s transaction; raise LeaseLost if not ours."""
        now = utcnow()
        result = await conn.execute(
            update(jobs)
            .where(self._held(job))
            .values(status=JobStatus.SUCCEEDED.value, finished_at=now, updated_at=now)
        )
        if result.rowcount != 1:
            raise LeaseLost(f"job {job.id} is no longer leased to this worker")

    async def complete_many(self, held: Sequence[Job]) -> int:
        """Mark several leased jobs succeeded at once; returns how many were still ours."""
        if not held:
            return 0
        async with self.db.transaction() as conn:
            return await self.complete_many_in(conn, held)

    async def complete_many_in(self, conn: AsyncConnection, held: Sequence[Job]) -> int:
        """``complete_many`` inside the caller's transaction."""
        if not held:
            return 0
        values = {
            "ids": [job.id for job in held],
            "tokens": sorted({job.lease_token for job in held if job.lease_token}),
            "now": utcnow(),
        }
        statement = _COMPLETE_MANY_PG if self.db.is_postgres else _COMPLETE_MANY
        result = await conn.execute(statement, values)
        return int(result.rowcount)

    async def retry_later(self, job: Job, delay: float, error: str) -> JobStatus:
        """Give the job back for another attempt after ``delay`` seconds, or bury it."""
        if job.attempts >= job.max_attempts:
            await self.bury(job, error)
            return JobStatus.DEAD
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(jobs)
                .where(self._held(job))
                .values(
                    status=JobStatus.QUEUED.value,
                    run_at=now + timedelta(seconds=max(0.0, delay)),
                    lease_token=None,
                    lease_expires_at=None,
                    worker_id=None,
                    last_error=error[:_ERROR_LIMIT],
                    updated_at=now,
                )
            )
        return JobStatus.QUEUED

    async def release(self, held: Sequence[Job]) -> None:
        """Hand unfinished jobs back untouched (graceful shutdown): the attempt is not counted."""
        if not held:
            return
        now = utcnow()
        async with self.db.transaction() as conn:
            for job in held:
                await conn.execute(
                    update(jobs)
                    .where(self._held(job))
                    .values(
                        status=JobStatus.QUEUED.value,
                        attempts=jobs.c.attempts - 1,
                        lease_token=None,
                        lease_expires_at=None,
                        worker_id=None,
                        updated_at=now,
                    )
                )

    async def bury(self, job: Job, error: str) -> None:
        """Move the job to the dead state, where an operator can look at it and retry it."""
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(jobs)
                .where(self._held(job))
                .values(
                    status=JobStatus.DEAD.value,
                    lease_token=None,
                    lease_expires_at=None,
                    last_error=error[:_ERROR_LIMIT],
                    finished_at=now,
                    updated_at=now,
                )
            )

    async def reap_expired(self) -> int:
        """Requeue (or bury, when out of attempts) jobs whose worker stopped renewing its lease."""
        now = utcnow()
        expired = and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at < now)
        async with self.db.transaction() as conn:
            dead = await conn.execute(
                update(jobs)
                .where(expired, jobs.c.attempts >= jobs.c.max_attempts)
                .values(
                    status=JobStatus.DEAD.value,
                    lease_token=None,
                    lease_expires_at=None,
                    last_error="lease expired on the last attempt (worker died or hung)",
                    finished_at=now,
                    updated_at=now,
                )
            )
            requeued = await conn.execute(
                update(jobs)
                .where(expired)
                .values(
                    status=JobStatus.QUEUED.value,
                    run_at=now,
                    lease_token=None,
                    lease_expires_at=None,
                    worker_id=None,
                    last_error="lease expired (worker died or hung)",
                    updated_at=now,
                )
            )
            if requeued.rowcount:
                await self._signal(conn)
        return int(dead.rowcount) + int(requeued.rowcount)

    async def purge_finished(self, older_than: timedelta, *, batch: int = BATCH) -> int:
        """Delete the jobs that succeeded more than ``older_than`` ago, ``batch`` per
        transaction (``store.retention``); returns how many. Queued, running and dead jobs stay,
        however old. Every webhook delivery is a job, so an hour of them can be millions of
        rows: one statement deleting them all held SQLite's write lock for as long as it ran."""
        cutoff = utcnow() - older_than
        # A job finishes after it is made: those made after the cutoff cannot be due yet.
        return await delete_in_batches(
            self.db,
            jobs,
            key=jobs.c.id,
            below=id_floor("job", cutoff),
            condition=(jobs.c.status == JobStatus.SUCCEEDED.value) & (jobs.c.finished_at < cutoff),
            batch=batch,
        )

    async def get(self, job_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
        return dict(row) if row else None

    async def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        tenant_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        query = select(jobs).order_by(jobs.c.id).limit(limit)
        if status:
            query = query.where(jobs.c.status == status)
        if kind:
            query = query.where(jobs.c.kind == kind)
        if tenant_id:
            query = query.where(jobs.c.tenant_id == tenant_id)
        if after:
            query = query.where(jobs.c.id > after)
        async with self.db.transaction() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]

    async def retry_dead(self, job_id: str) -> bool:
        """Give a dead job a fresh set of attempts; False when it is not dead."""
        now = utcnow()
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.DEAD.value)
                .values(
                    status=JobStatus.QUEUED.value,
                    attempts=0,
                    run_at=now,
                    finished_at=None,
                    updated_at=now,
                )
            )
            if result.rowcount:
                await self._signal(conn)
        return bool(result.rowcount)

    async def stats(self) -> dict[str, Any]:
        """Counts by kind and status and the age of the oldest due job (lag), for metrics."""
        now = utcnow()
        async with self.db.transaction() as conn:
            counts = await conn.execute(
                select(jobs.c.kind, jobs.c.status, func.count()).group_by(
                    jobs.c.kind, jobs.c.status
                )
            )
            oldest = await conn.execute(
                select(func.min(jobs.c.run_at)).where(
                    jobs.c.status == JobStatus.QUEUED.value, jobs.c.run_at <= now
                )
            )
            oldest_due = oldest.scalar_one_or_none()
        lag = 0.0
        if oldest_due is not None:
            if oldest_due.tzinfo is None:  # func.min bypasses the column type on SQLite
                oldest_due = datetime.fromisoformat(str(oldest_due)).replace(tzinfo=now.tzinfo)
            lag = max(0.0, (now - oldest_due).total_seconds())
        return {
            "counts": [(kind, status, int(n)) for kind, status, n in counts.all()],
            "lag_seconds": lag,
        }
