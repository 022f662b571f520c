"""Pipelined writes: never waited for on SQLite, yet a failure still fails the transaction."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from interlink.runtime import Runtime
from interlink.store.database import StoreRejected, pipelined
from interlink.store.schema import jobs
from interlink.store.types import utcnow

_INSERT = pipelined(jobs.insert())


def _job(job_id: str, key: str | None = None) -> dict[str, Any]:
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


async def _ids(runtime: Runtime) -> list[str]:
    async with runtime.db.transaction() as conn:
        return list((await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars())


async def test_pipelined_writes_commit_like_any_other(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(_INSERT, [_job("job_a"), _job("job_b")])
        await conn.execute(_INSERT, [_job("job_c")])
        # A statement that is waited for sees what was sent before it.
        seen = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
        assert seen == ["job_a", "job_b", "job_c"]
    assert await _ids(runtime) == ["job_a", "job_b", "job_c"]


async def test_a_failed_pipelined_write_fails_the_commit_and_nothing_is_kept(
    runtime: Runtime,
) -> None:
    with pytest.raises(StoreRejected):
        async with runtime.db.transaction() as conn:
            await conn.execute(_INSERT, [_job("job_a", key="same")])
            await conn.execute(_INSERT, [_job("job_b", key="same")])  # breaks the unique key
            await conn.execute(_INSERT, [_job("job_c")])  # sent after the failure: never runs
    assert await _ids(runtime) == []
    # The failure is forgotten with the rollback: the next transaction works as usual.
    async with runtime.db.transaction() as conn:
        await conn.execute(_INSERT, [_job("job_d", key="same")])
    assert await _ids(runtime) == ["job_d"]


async def test_a_failed_pipelined_write_surfaces_at_the_next_awaited_statement(
    runtime: Runtime,
) -> None:
    with pytest.raises(StoreRejected):
        async with runtime.db.transaction() as conn:
            await conn.execute(_INSERT, [_job("job_a"), _job("job_a")])  # the same id twice
            await conn.execute(select(jobs.c.id))
            raise AssertionError("the select must raise the insert's failure")
    assert await _ids(runtime) == []
