"""Inline transactions (``Database.transaction(inline=True)``): on SQLite they run on the event
loop's thread once they hold the write lock, and they commit, fail and roll back like any other
transaction; on PostgreSQL the flag changes nothing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import select, text

from interlink.runtime import Runtime
from interlink.store.database import StoreRejected, pipelined
from interlink.store.direct import write_many
from interlink.store.schema import jobs
from interlink.store.sqlite_driver import raw_connection
from tests.integration.store_support import job_ids, job_row, ticking, write_lock_taken

_INSERT = pipelined(jobs.insert())


async def _thread_of_statements(runtime: Runtime, *, inline: bool) -> int:
    """The thread that runs the statements of a transaction (SQLite)."""
    async with runtime.db.transaction(inline=inline) as conn:
        raw = await conn.get_raw_connection()
        connection, _ = raw_connection(raw.dbapi_connection)
        connection.create_function("thread_of", 0, threading.get_ident)
        value = (await conn.execute(text("SELECT thread_of()"))).scalar_one()
        assert isinstance(value, int)
        return value


async def test_an_inline_transaction_commits_what_it_wrote(runtime: Runtime) -> None:
    async with runtime.db.transaction(inline=True) as conn:
        await conn.execute(_INSERT, [job_row("job_a")])
        await write_many(conn, _INSERT, [job_row("job_b"), job_row("job_c")])
        seen = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
        assert seen == ["job_a", "job_b", "job_c"]
    assert await job_ids(runtime) == ["job_a", "job_b", "job_c"]
    if not runtime.db.is_postgres:
        assert await _thread_of_statements(runtime, inline=True) == threading.get_ident()
        assert await _thread_of_statements(runtime, inline=False) != threading.get_ident()


async def test_a_failed_statement_fails_at_once_and_nothing_is_kept(runtime: Runtime) -> None:
    with pytest.raises(StoreRejected):
        async with runtime.db.transaction(inline=True) as conn:
            await write_many(conn, _INSERT, [job_row("job_a", key="same")])
            await write_many(conn, _INSERT, [job_row("job_b", key="same")])  # breaks the key
            raise AssertionError("the second write must raise")
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with runtime.db.transaction(inline=True) as conn:
            await conn.execute(_INSERT, [job_row("job_c")])
            raise RuntimeError("changed my mind")
    assert await job_ids(runtime) == []
    # Both ways of running a transaction work afterwards, in either order.
    async with runtime.db.transaction(inline=True) as conn:
        await write_many(conn, _INSERT, [job_row("job_d", key="same")])
    async with runtime.db.transaction() as conn:
        await write_many(conn, _INSERT, [job_row("job_e")])
    async with runtime.db.transaction(inline=True) as conn:
        await conn.execute(_INSERT, [job_row("job_f")])
    assert await job_ids(runtime) == ["job_d", "job_e", "job_f"]


@pytest.mark.parametrize("seconds", [0.02, 0.4], ids=["briefly", "long"])
async def test_a_write_lock_held_elsewhere_is_waited_for_without_holding_the_loop(
    sqlite_url: str, seconds: float
) -> None:
    from tests.conftest import make_settings

    runtime = Runtime(make_settings(sqlite_url), capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        with write_lock_taken(sqlite_url) as other:
            async with ticking(0.005) as ticks:
                # Released by the loop itself: a wait that held the loop would never end.
                asyncio.get_running_loop().call_later(seconds, other.execute, "COMMIT")
                started = time.monotonic()
                async with runtime.db.transaction(inline=True) as conn:
                    await write_many(conn, _INSERT, [job_row("job_a")])
                waited = time.monotonic() - started
        assert await job_ids(runtime) == ["job_a"]
        assert seconds * 0.9 <= waited < 5
        # A tick every 5 ms meanwhile (well under half of them, on a busy machine, still shows
        # that the wait did not hold the loop).
        assert ticks.count >= seconds / 0.005 * 0.3
    finally:
        await runtime.close()
