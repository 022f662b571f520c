"""Rows and reads shared by the store's transaction tests (pipelined, inline)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from interlink.runtime import Runtime
from interlink.store.schema import jobs
from interlink.store.types import utcnow


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


async def job_ids(runtime: Runtime) -> list[str]:
    """The ids of every stored job, in order."""
    async with runtime.db.transaction() as conn:
        return list((await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars())
