"""Pipelined writes: never waited for on SQLite, yet a failure still fails the transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.runtime import Runtime
from interlink.store.database import StoreRejected, StoreUnavailable, pipelined
from interlink.store.direct import write_many
from interlink.store.schema import jobs
from interlink.store.types import utcnow
from tests.integration.store_support import job_ids, job_row

_INSERT = pipelined(jobs.insert())
_SET_STATUS = pipelined(
    update(jobs)
    .where(jobs.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), finished_at=bindparam("b_at"))
)


async def test_pipelined_writes_commit_like_any_other(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(_INSERT, [job_row("job_a"), job_row("job_b")])
        await conn.execute(_INSERT, [job_row("job_c")])
        # A statement that is waited for sees what was sent before it.
        seen = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
        assert seen == ["job_a", "job_b", "job_c"]
    assert await job_ids(runtime) == ["job_a", "job_b", "job_c"]


async def _pipelined(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(_INSERT, rows)


async def _write_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await write_many(conn, _INSERT, rows)


Write = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[None]]


@pytest.fixture(params=[_pipelined, _write_many], ids=["pipelined", "write_many"])
def write(request: pytest.FixtureRequest) -> Write:
    """The two ways a write goes without being waited for on SQLite."""
    write: Write = request.param
    return write


async def test_a_failed_unwaited_write_fails_the_commit_and_nothing_is_kept(
    runtime: Runtime, write: Write
) -> None:
    with pytest.raises(StoreRejected):
        async with runtime.db.transaction() as conn:
            await write(conn, [job_row("job_a", key="same")])
            await write(conn, [job_row("job_b", key="same")])  # breaks the unique key
            await write(conn, [job_row("job_c")])  # sent after the failure: never runs
    assert await job_ids(runtime) == []
    # The failure is forgotten with the rollback: the next transaction works as usual.
    async with runtime.db.transaction() as conn:
        await write(conn, [job_row("job_d", key="same")])
    assert await job_ids(runtime) == ["job_d"]


async def test_a_failed_unwaited_write_surfaces_at_the_next_awaited_statement(
    runtime: Runtime, write: Write
) -> None:
    with pytest.raises(StoreRejected):
        async with runtime.db.transaction() as conn:
            await write(conn, [job_row("job_a"), job_row("job_a")])  # the same id twice
            await conn.execute(select(jobs.c.id))
            raise AssertionError("the select must raise the insert's failure")
    assert await job_ids(runtime) == []


async def test_write_many_stores_rows_as_sqlalchemy_does(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(_INSERT, [job_row("job_a")])
        written = job_row("job_c")
        await write_many(conn, _INSERT, [job_row("job_b"), written])
        await write_many(conn, _INSERT, [])
        finished = utcnow()
        changes = [{"b_id": "job_b", "b_status": "succeeded", "b_at": finished}]
        await write_many(conn, _SET_STATUS, changes)
        # What was sent without waiting is seen by the next statement that is waited for.
        seen = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
        assert seen == ["job_a", "job_b", "job_c"]
    async with runtime.db.transaction() as conn:
        rows = {row["id"]: row for row in (await conn.execute(select(jobs))).mappings()}
    through_sqlalchemy, direct = rows["job_a"], rows["job_c"]
    for column in ("kind", "tenant_id", "status", "attempts", "max_attempts", "idempotency_key"):
        assert direct[column] == through_sqlalchemy[column], column
    assert direct["payload"] == {"n": "job_c"}
    assert direct["run_at"] == written["run_at"]
    assert (rows["job_b"]["status"], rows["job_b"]["finished_at"]) == ("succeeded", finished)
    assert rows["job_c"]["status"] == "queued" and rows["job_c"]["finished_at"] is None


async def test_write_many_begins_a_transaction_the_caller_can_still_roll_back(
    runtime: Runtime,
) -> None:
    async with runtime.db.connection() as conn:
        await write_many(conn, _INSERT, [job_row("job_a")])
        assert conn.in_transaction()
        await conn.rollback()
    assert await job_ids(runtime) == []


async def test_on_postgres_rows_go_to_the_driver_once_the_transaction_has_begun(
    pg_runtime: Runtime,
) -> None:
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.split(" ", 1)[0])

    engine = pg_runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with pg_runtime.db.transaction() as conn:
            # The transaction's first statement: SQLAlchemy sends it, after its BEGIN.
            await write_many(conn, _INSERT, [job_row("job_a")])
            await write_many(conn, _INSERT, [job_row("job_b"), job_row("job_c")])
            changes = [{"b_id": "job_b", "b_status": "succeeded", "b_at": utcnow()}]
            await write_many(conn, _SET_STATUS, changes)
            # Another connection sees none of it before the commit: one transaction.
            assert await job_ids(pg_runtime) == []
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sent.count("INSERT") == 1 and "UPDATE" not in sent
    assert await job_ids(pg_runtime) == ["job_a", "job_b", "job_c"]


async def test_on_postgres_a_connection_lost_under_a_direct_write_is_the_store_unavailable(
    pg_runtime: Runtime,
) -> None:
    with pytest.raises(StoreUnavailable):
        async with pg_runtime.db.transaction() as conn:
            await write_many(conn, _INSERT, [job_row("job_a")])
            # Ended from another connection, as a server restart would.
            pid = (await conn.execute(select(func.pg_backend_pid()))).scalar_one()
            async with pg_runtime.db.transaction() as other:
                await other.execute(select(func.pg_terminate_backend(pid)))
            await write_many(conn, _INSERT, [job_row("job_b"), job_row("job_c")])
    # The pool dropped the dead connections: the next transaction works.
    async with pg_runtime.db.transaction() as conn:
        await write_many(conn, _INSERT, [job_row("job_d")])
        await write_many(conn, _INSERT, [job_row("job_e")])
    assert await job_ids(pg_runtime) == ["job_d", "job_e"]
