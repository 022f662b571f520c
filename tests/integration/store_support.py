"""Rows, reads and a held lock shared by the store's transaction tests."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from interlink.ids import id_floor
from interlink.runtime import Runtime
from interlink.store.schema import jobs
from interlink.store.sqlite_driver import raw_connection
from interlink.store.types import utcnow


def made_at(prefix: str, moment: datetime, n: int) -> str:
    """An id as ``new_id`` would have made it at ``moment`` (the ``n``-th of that millisecond)."""
    return f"{id_floor(prefix, moment)[:-6]}{n:06d}"


def job_row(job_id: str, key: str | None = None) -> dict[str, Any]:
    """A queued ``jobs`` row; ``key`` is its idempotency key (unique)."""
    now = utcnow()
    return {
        "id": job_id,
        "kind": "test.noop",
        "tenant_id": None,
        "payload": {"n": job_id},
        "status": "queued",
        "run_at": now,
        "attempts": 0,
        "max_attempts": 3,
        "idempotency_key": key,
        "created_at": now,
        "updated_at": now,
    }


async def until_a_run_succeeded(runtime: Runtime, kind: str, timeout: float = 10.0) -> None:
    """Wait until a job of ``kind`` (an hourly job: starting workers ask for one) has
    succeeded; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not any(row["status"] == "succeeded" for row in await runtime.queue.list(kind=kind)):
        assert time.monotonic() < deadline, f"no {kind} job succeeded within {timeout:g} s"
        await asyncio.sleep(0.05)


async def job_ids(runtime: Runtime) -> list[str]:
    """The ids of every stored job, in order."""
    async with runtime.db.transaction() as conn:
        return list((await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars())


@contextlib.contextmanager
def write_lock_taken(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """Another connection to the store's file, holding its write lock until it commits."""
    other = sqlite3.connect(sqlite_url.split(":///", 1)[1], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


async def commit_when(other: sqlite3.Connection, after: float, ready: Callable[[], bool]) -> float:
    """Commit ``other`` (:func:`write_lock_taken`), releasing the write lock, from the event
    loop, ``after`` seconds from now and once ``ready()`` holds; returns when
    (``time.monotonic``). Released by the loop itself: a wait for the lock that held the loop
    would never end (it fails with SQLite's busy timeout)."""
    await asyncio.sleep(after)
    while not ready():
        await asyncio.sleep(0)
    other.execute("COMMIT")
    return time.monotonic()


@contextlib.asynccontextmanager
async def begins_traced(runtime: Runtime) -> AsyncIterator[list[int]]:
    """The threads that ran a ``BEGIN IMMEDIATE`` (each try, taken or refused, in order) on
    the SQLite store's one pooled connection, for the block's length."""
    async with runtime.db.connection() as conn:
        raw = await conn.get_raw_connection()
        connection, _ = raw_connection(raw.dbapi_connection)
    threads: list[int] = []

    def trace(statement: str) -> None:
        if statement == "BEGIN IMMEDIATE":
            threads.append(threading.get_ident())

    connection.set_trace_callback(trace)
    try:
        yield threads
    finally:
        connection.set_trace_callback(None)


@dataclass
class Ticks:
    """How often a task on the loop woke up."""

    count: int = 0


@contextlib.asynccontextmanager
async def ticking(interval: float) -> AsyncIterator[Ticks]:
    """Counts, for the block's length, the wake-ups of a task sleeping ``interval`` each time:
    how much the loop ran other work meanwhile."""
    ticks = Ticks()

    async def tick() -> None:
        while True:
            await asyncio.sleep(interval)
            ticks.count += 1

    ticker = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        ticker.cancel()
