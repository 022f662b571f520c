"""Direct statements write exactly what SQLAlchemy writes, in one transaction, on SQLite and
on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, func, select, text

from interlink.runtime import Runtime
from interlink.store.database import StoreRejected, StoreUnavailable
from interlink.store.direct import DirectStatement, DirectTransaction, run_transaction
from interlink.store.schema import events
from interlink.store.sqlite_driver import BUSY_TIMEOUT_MS
from interlink.store.types import UTCDateTime, sqlite_utc_text
from tests.integration.store_support import (
    begins_traced,
    commit_when,
    ticking,
    write_lock_taken,
)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 23, 3, 4, 5, 12, tzinfo=UTC),
        datetime(2026, 11, 23, 3, 4, 5, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 11, 23, 5, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_utc_text_is_what_sqlalchemy_stores(moment: datetime, sqlite_runtime: Runtime) -> None:
    dialect = sqlite_runtime.db.engine.dialect
    through_sqlalchemy = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert through_sqlalchemy is not None
    assert sqlite_utc_text(moment) == through_sqlalchemy(moment)


def test_utc_text_remembers_only_the_very_same_moment() -> None:
    first = datetime(2026, 11, 23, 3, 4, 5, 1, tzinfo=UTC)
    second = datetime(2026, 11, 23, 3, 4, 5, 2, tzinfo=UTC)
    shifted = datetime(2026, 11, 23, 4, 4, 5, 1, tzinfo=timezone(timedelta(hours=1)))
    texts = [sqlite_utc_text(m) for m in (first, first, second, None, second, shifted, first)]
    once, twice, other, nothing, again, converted, back = texts
    assert once == twice == converted == back == "2026-11-23 03:04:05.000001"
    assert other == again == "2026-11-23 03:04:05.000002"
    assert nothing is None


def test_utc_text_stays_right_past_the_moments_it_keeps() -> None:
    start = datetime(2026, 11, 23, 3, 4, 5, tzinfo=UTC)
    moments = [start + timedelta(microseconds=n) for n in range(600)]
    expected = [f"2026-11-23 03:04:05.{n:06d}" for n in range(600)]
    for _ in range(2):  # the second pass finds some kept, others dropped when the cache filled
        assert [sqlite_utc_text(moment) for moment in moments] == expected
        assert [sqlite_utc_text(moment) for moment in reversed(moments)] == expected[::-1]


def test_utc_text_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(datetime(2026, 11, 23, 3, 4, 5))
    assert sqlite_utc_text(None) is None


def _event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "tenant_id": None,
        "type": "dev.interlink.test",
        "source": "/interlink/system/test",
        "subject": "sub",
        "time": datetime(2026, 11, 23, 3, 4, 5, 6, tzinfo=UTC),
        "data": {"nested": {"n": 1}, "text": "é\u2028", "list": [1, None, True]},
        "relayed": False,
        **extra,
    }


async def test_rows_written_directly_read_back_as_written(runtime: Runtime) -> None:
    insert = DirectStatement.insert(events, list(_event("x")), runtime.db.engine.dialect)

    def work(tx: DirectTransaction) -> str:
        tx.execute_many(insert, [_event("evt_direct_1"), _event("evt_direct_2")])
        return "done"

    assert await run_transaction(runtime.db, work) == "done"
    async with runtime.db.transaction() as conn:
        rows = (await conn.execute(select(events).order_by(events.c.id))).mappings().all()
    assert [row["id"] for row in rows] == ["evt_direct_1", "evt_direct_2"]
    expected = _event("evt_direct_1")
    for key in ("time", "data", "relayed", "subject", "type"):
        assert rows[0][key] == expected[key], key


async def test_a_failing_transaction_leaves_nothing_behind(runtime: Runtime) -> None:
    insert = DirectStatement.insert(events, list(_event("x")), runtime.db.engine.dialect)

    def work(tx: DirectTransaction) -> None:
        tx.execute_many(insert, [_event("evt_rolled_back")])
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await run_transaction(runtime.db, work)
    # A constraint violation is the store's error, and rolls back the rows before it too.

    def duplicate(tx: DirectTransaction) -> None:
        tx.execute_many(insert, [_event("evt_first"), _event("evt_first")])

    with pytest.raises(StoreRejected):
        await run_transaction(runtime.db, duplicate)
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(events.c.id))).all() == []
    # The connection is usable afterwards.
    await run_transaction(runtime.db, lambda tx: tx.execute_many(insert, [_event("evt_ok")]))
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(events.c.id))).scalars().all() == ["evt_ok"]


async def test_fetch_returns_every_rows_result_in_order(runtime: Runtime) -> None:
    dialect = runtime.db.engine.dialect
    insert = DirectStatement.insert(events, list(_event("x")), dialect)
    lookup = DirectStatement.compile(
        select(events.c.id, events.c.subject).where(events.c.id == bindparam("id")), dialect
    )

    def work(tx: DirectTransaction) -> list[Any]:
        tx.execute_many(insert, [_event("evt_a", subject="A"), _event("evt_b", subject="B")])
        return tx.fetch(lookup, [{"id": "evt_b"}, {"id": "missing"}, {"id": "evt_a"}])

    found = await run_transaction(runtime.db, work)
    assert [tuple(row) for row in found] == [("evt_b", "B"), ("evt_a", "A")]


async def test_a_free_write_lock_means_the_transaction_runs_on_the_loops_thread(
    sqlite_runtime: Runtime,
) -> None:
    def work(tx: DirectTransaction) -> int:
        return threading.get_ident()

    assert await run_transaction(sqlite_runtime.db, work) == threading.get_ident()
    async with sqlite_runtime.db.transaction() as conn:
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert timeout == BUSY_TIMEOUT_MS  # what the inline attempt lowered is restored


def _insert_noting_the_thread(
    sqlite_runtime: Runtime, event_id: str
) -> tuple[list[int], Callable[[DirectTransaction], None]]:
    """Work that inserts one event, and the list of the threads it ran on."""
    insert = DirectStatement.insert(events, list(_event("x")), sqlite_runtime.db.engine.dialect)
    ran_on: list[int] = []

    def work(tx: DirectTransaction) -> None:
        ran_on.append(threading.get_ident())
        tx.execute_many(insert, [_event(event_id)])

    return ran_on, work


async def test_a_briefly_taken_write_lock_is_waited_for_on_the_loops_thread(
    sqlite_runtime: Runtime, sqlite_url: str
) -> None:
    ran_on, work = _insert_noting_the_thread(sqlite_runtime, "evt_after_a_short_wait")

    # Held for 20 ms, as the checkpoint thread or another process may hold it now and then, and
    # until the loop has gone on running other tasks meanwhile (however slowly a loaded machine
    # runs them): released by the loop itself, which a wait that held it would never let happen.
    with write_lock_taken(sqlite_url) as other:
        async with ticking(0) as ticks:
            release = asyncio.create_task(commit_when(other, 0.02, lambda: ticks.count > 10))
            started = time.monotonic()
            try:
                await asyncio.wait_for(run_transaction(sqlite_runtime.db, work), 10)
            finally:
                release.cancel()  # done by now, unless the transaction failed
            finished = time.monotonic()
            released_at = await release
    assert ran_on == [threading.get_ident()]  # once, on the loop's thread, after the wait
    assert finished - started > 0.015
    assert finished - released_at < 1.0
    assert ticks.count > 10  # the loop went on running other tasks meanwhile
    async with sqlite_runtime.db.transaction() as conn:
        ids = (await conn.execute(select(events.c.id))).scalars().all()
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert ids == ["evt_after_a_short_wait"]
    assert timeout == BUSY_TIMEOUT_MS


async def test_a_taken_write_lock_is_waited_for_on_the_connections_thread(
    sqlite_runtime: Runtime, sqlite_url: str
) -> None:
    ran_on, work = _insert_noting_the_thread(sqlite_runtime, "evt_after_the_lock")

    # Another process's connection, as `interlink` commands or a second server would hold it.
    async with begins_traced(sqlite_runtime) as begun_on:
        with write_lock_taken(sqlite_url) as other:
            waiting = asyncio.create_task(run_transaction(sqlite_runtime.db, work))
            # Tried at once on the loop's thread (the lock was taken), then waited for on the
            # connection's thread: wait until it waits there, however long the tries took.
            async with asyncio.timeout(30):
                while all(thread == threading.get_ident() for thread in begun_on):
                    await asyncio.sleep(0.001)
            started = time.monotonic()
            for _ in range(20):
                await asyncio.sleep(0.01)
            # 20 ticks of 10 ms: the loop was not held waiting for the lock, which is still
            # taken (a loop held through SQLite's busy timeout, 10 s, would fail both checks).
            assert time.monotonic() - started < BUSY_TIMEOUT_MS / 1000 / 2
            assert not waiting.done()
            other.execute("COMMIT")
            await asyncio.wait_for(waiting, 10)
    assert ran_on[-1] != threading.get_ident()
    async with sqlite_runtime.db.transaction() as conn:
        ids = (await conn.execute(select(events.c.id))).scalars().all()
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert ids == ["evt_after_the_lock"]
    assert timeout == BUSY_TIMEOUT_MS


async def test_a_notify_pg_runtime_is_sent_at_the_commit_and_not_on_rollback(
    pg_runtime: Runtime, pg_url: str
) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(pg_url)
    try:
        for channel in ("il_direct_test", "il_direct_later"):
            await listener.add_listener(channel, lambda *args: heard.put_nowait(args[2]))

        def rolled_back(tx: DirectTransaction) -> None:
            tx.notify("il_direct_test")
            raise RuntimeError("not this one")

        with pytest.raises(RuntimeError):
            await run_transaction(pg_runtime.db, rolled_back)
        await run_transaction(pg_runtime.db, lambda tx: tx.notify("il_direct_test"))
        await run_transaction(pg_runtime.db, lambda tx: tx.notify("il_direct_later"))
        # Notifications come in the order their transactions committed: once the later one is
        # here, anything the rolled-back transaction had sent would have come before it.
        assert await asyncio.wait_for(heard.get(), 30) == "il_direct_test"
        assert await asyncio.wait_for(heard.get(), 30) == "il_direct_later"
        assert heard.empty()  # the rolled-back transaction's notification never came
    finally:
        await listener.close()


async def test_a_connection_lost_pg_runtime_is_the_store_unavailable_and_is_replaced(
    pg_runtime: Runtime,
) -> None:
    dialect = pg_runtime.db.engine.dialect
    insert = DirectStatement.insert(events, list(_event("x")), dialect)
    # The server ends the connection in the middle of the transaction, as a restart would.
    end_own_backend = DirectStatement.compile(
        select(func.pg_terminate_backend(func.pg_backend_pid())), dialect
    )

    def cut_off(tx: DirectTransaction) -> None:
        tx.execute_many(insert, [_event("evt_cut_off")])
        tx.fetch(end_own_backend, [{}])

    with pytest.raises(StoreUnavailable):
        await run_transaction(pg_runtime.db, cut_off)
    # The pool dropped that connection: the next transaction gets a working one.
    await run_transaction(pg_runtime.db, lambda tx: tx.execute_many(insert, [_event("evt_ok")]))
    async with pg_runtime.db.transaction() as conn:
        assert (await conn.execute(select(events.c.id))).scalars().all() == ["evt_ok"]


async def test_a_transaction_cancelled_midway_pg_runtime_leaves_nothing_and_a_clean_pool(
    pg_runtime: Runtime,
) -> None:
    dialect = pg_runtime.db.engine.dialect
    insert = DirectStatement.insert(events, list(_event("x")), dialect)
    sleep = DirectStatement.compile(select(func.pg_sleep(bindparam("seconds"))), dialect)

    def slow(tx: DirectTransaction) -> None:
        tx.execute_many(insert, [_event("evt_cancelled")])
        tx.fetch(sleep, [{"seconds": 5}])

    task = asyncio.create_task(run_transaction(pg_runtime.db, slow))
    # Cancelled midway: once the server runs the sleep, however long the insert took to get
    # there on a loaded machine.
    sleeping = text(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        " AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(30):
        while True:
            async with pg_runtime.db.connection() as conn:
                if (await conn.execute(sleeping)).scalar_one():
                    break
            await asyncio.sleep(0.01)
    task.cancel()
    for _ in range(3):  # and again while it rolls back, as a shutdown that gives up may
        await asyncio.sleep(0)
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Every connection the pool lends afterwards is outside any transaction: a later one
    # commits, and the cancelled insert never does.
    for n in range(3):
        await run_transaction(
            pg_runtime.db, lambda tx, n=n: tx.execute_many(insert, [_event(f"evt_later_{n}")])
        )
    async with pg_runtime.db.transaction() as conn:
        ids = (await conn.execute(select(events.c.id).order_by(events.c.id))).scalars().all()
    assert ids == ["evt_later_0", "evt_later_1", "evt_later_2"]
