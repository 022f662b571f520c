"""Retention of outbox events, finished jobs and the audit log: relayed events, succeeded jobs
and audit entries past the retention go, a batch per transaction; events not yet relayed and
jobs not succeeded stay however old, and younger ones stay. The hourly ``core.purge`` job does
it, once an hour however many worker processes run."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select

from interlink.capability import Capability
from interlink.housekeeping import PURGE_JOB, purge_audit_log
from interlink.ids import id_floor
from interlink.runtime import Runtime
from interlink.store.schema import audit_log, events, jobs
from interlink.store.types import utcnow
from tests.conftest import make_settings, started_runtime
from tests.integration.store_support import made_at, until_a_run_succeeded


async def _insert_made_at(
    runtime: Runtime, table: Table, moment: datetime, count: int, values: dict[str, Any]
) -> list[str]:
    """``count`` rows of ``table`` with ``values``, their ids made at ``moment``."""
    prefix = {"events": "evt", "audit_log": "aud"}[table.name]
    ids = [made_at(prefix, moment, n) for n in range(count)]
    async with runtime.db.transaction() as conn:
        await conn.execute(insert(table), [{"id": row_id, **values} for row_id in ids])
    return ids


async def _ids_of(runtime: Runtime, table: Table) -> set[str]:
    async with runtime.db.transaction() as conn:
        return set((await conn.execute(select(table.c.id))).scalars())


async def _insert(runtime: Runtime, moment: datetime, count: int, *, relayed: bool) -> list[str]:
    values = {"tenant_id": None, "type": "dev.interlink.request.completed",
              "source": "/interlink/system/test", "subject": None, "time": moment, "data": {},
              "relayed": relayed, "relayed_at": moment if relayed else None}  # fmt: skip
    return await _insert_made_at(runtime, events, moment, count, values)


async def _ids(runtime: Runtime) -> set[str]:
    return await _ids_of(runtime, events)


async def test_relayed_events_past_the_retention_are_purged_in_batches(runtime: Runtime) -> None:
    now = utcnow()
    old_relayed = await _insert(runtime, now - timedelta(days=8), 7, relayed=True)
    old_pending = await _insert(runtime, now - timedelta(days=9), 2, relayed=False)
    young = await _insert(runtime, now - timedelta(days=6), 3, relayed=True)

    assert await runtime.outbox.purge(timedelta(days=7), batch=3) == 7  # 3 ids a transaction

    assert await _ids(runtime) == {*old_pending, *young}
    assert not set(old_relayed) & await _ids(runtime)
    assert await runtime.outbox.purge(timedelta(days=7)) == 0
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(func.count()).select_from(events))).scalar() == 5


async def test_the_cutoff_falls_between_ids_made_before_and_after_it(runtime: Runtime) -> None:
    now = utcnow()
    before = await _insert(runtime, now - timedelta(days=7, seconds=2), 1, relayed=True)
    after = await _insert(runtime, now - timedelta(days=7) + timedelta(seconds=30), 1, relayed=True)

    assert await runtime.outbox.purge(timedelta(days=7)) == 1
    assert await _ids(runtime) == set(after)
    assert before[0] < id_floor("evt", now - timedelta(days=7)) <= after[0]


async def _purge_jobs(runtime: Runtime) -> list[dict[str, object]]:
    return await runtime.queue.list(kind=PURGE_JOB)


def _hours_until_now(since: datetime) -> set[datetime]:
    """The starts of the hours from ``since``'s to now's (one, unless the clock passed an
    hour meanwhile)."""
    first, last = (at.replace(minute=0, second=0, microsecond=0) for at in (since, utcnow()))
    return {first, last}


async def _until_purged(runtime: Runtime) -> None:
    """Wait (10 s at most) until this hour's ``core.purge`` job has succeeded."""
    await until_a_run_succeeded(runtime, PURGE_JOB)


async def _run_workers_until_purged(runtime: Runtime) -> None:
    """Run ``runtime``'s workers until this hour's housekeeping has run, then stop them."""
    stop = asyncio.Event()
    workers = asyncio.create_task(runtime.run_workers(stop))
    try:
        await _until_purged(runtime)
    finally:
        stop.set()
        await workers


async def test_the_workers_housekeeping_purges_at_start(runtime: Runtime) -> None:
    now = utcnow()
    await _insert(runtime, now - timedelta(days=8), 2, relayed=True)
    young = await _insert(runtime, now - timedelta(days=1), 1, relayed=True)
    await _run_workers_until_purged(runtime)
    assert await _ids(runtime) == set(young)


async def test_housekeeping_runs_once_an_hour_however_many_worker_processes(
    runtime: Runtime, db_url: str
) -> None:
    await _insert(runtime, utcnow() - timedelta(days=8), 2, relayed=True)
    started = utcnow()
    async with started_runtime(db_url) as other:  # a second process on the same store
        stop = asyncio.Event()
        workers = [asyncio.create_task(rt.run_workers(stop)) for rt in (runtime, other)]
        try:
            await _until_purged(runtime)
            await asyncio.sleep(0.3)  # time for a second run, were there one
        finally:
            stop.set()
            await asyncio.gather(*workers)
    assert await _ids(runtime) == set()
    rows = await _purge_jobs(runtime)
    # This hour's job ran once; it asked for the next hour's, once. (The hour the workers
    # started in: the one before now's, were the clock to pass the hour meanwhile.)
    _ran_this_hour_and_asked_for_the_next(rows, PURGE_JOB, started)
    assert rows[0]["attempts"] == 1


async def test_a_failing_housekeeping_run_still_asks_for_the_next_hour(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(older_than: timedelta) -> int:
        raise RuntimeError("the store is in trouble")

    monkeypatch.setattr(runtime.outbox, "purge", broken)
    started = utcnow()
    stop = asyncio.Event()
    workers = asyncio.create_task(runtime.run_workers(stop))
    try:
        deadline = time.monotonic() + 10
        while not any(row["last_error"] for row in await _purge_jobs(runtime)):
            assert time.monotonic() < deadline, "the housekeeping job did not run"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await workers
    rows = {row["idempotency_key"]: row for row in await _purge_jobs(runtime)}
    [this] = [key for key, row in rows.items() if row["last_error"]]
    hour = datetime.fromisoformat(this.removeprefix(f"{PURGE_JOB}:"))
    assert hour in _hours_until_now(started)
    after = f"{PURGE_JOB}:{(hour + timedelta(hours=1)).isoformat()}"
    assert "the store is in trouble" in rows[this]["last_error"]
    assert rows[this]["status"] == "queued"  # to be tried again, later
    assert rows[this]["run_at"] > utcnow()
    assert rows[after]["status"] == "queued"  # the chain goes on


async def test_a_capabilitys_hourly_job_runs_when_workers_start_and_asks_for_the_next_hour(
    db_url: str,
) -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1

    probe = Capability(name="probe", hourly_jobs=lambda runtime: {"probe.hourly": work})
    rt = Runtime(make_settings(db_url), capabilities=[probe])
    await rt.start(migrate_schema=True)
    try:
        assert await rt.queue.list(kind="probe.hourly") == []  # asked for by workers only
        started = utcnow()
        stop = asyncio.Event()
        workers = asyncio.create_task(rt.run_workers(stop))
        try:
            await until_a_run_succeeded(rt, "probe.hourly")
        finally:
            stop.set()
            await workers
        rows = await rt.queue.list(kind="probe.hourly")
    finally:
        await rt.close()
    assert runs == 1
    _ran_this_hour_and_asked_for_the_next(rows, "probe.hourly", started)


def _ran_this_hour_and_asked_for_the_next(
    rows: list[dict[str, Any]], kind: str, started: datetime
) -> None:
    """``rows`` are the run of the hour the workers started in, succeeded, and the next hour's,
    queued for its start. The first was due when the workers asked for it, not at its hour's
    start: it had not been waiting since then."""
    [(first, hour), (second, next_hour)] = [
        (row, datetime.fromisoformat(row["idempotency_key"].removeprefix(f"{kind}:")))
        for row in rows
    ]
    assert hour in _hours_until_now(started)
    assert next_hour == hour + timedelta(hours=1)
    assert first["status"] == "succeeded"
    assert started <= first["run_at"] <= utcnow()
    assert (second["status"], second["run_at"]) == ("queued", next_hour)


async def _insert_audit(runtime: Runtime, moment: datetime, count: int) -> list[str]:
    values = {"tenant_id": None, "actor": "admin", "action": "tenant.created", "target": None,
              "details": {}, "request_id": None, "created_at": moment}  # fmt: skip
    return await _insert_made_at(runtime, audit_log, moment, count, values)


async def _audit_ids(runtime: Runtime) -> set[str]:
    return await _ids_of(runtime, audit_log)


async def test_audit_entries_past_the_retention_are_purged_in_batches(runtime: Runtime) -> None:
    now = utcnow()
    await _insert_audit(runtime, now - timedelta(days=400), 5)
    young = await _insert_audit(runtime, now - timedelta(days=300), 2)

    assert await purge_audit_log(runtime.db, timedelta(days=365), batch=2) == 5
    assert await _audit_ids(runtime) == set(young)
    assert await purge_audit_log(runtime.db, timedelta(days=365)) == 0


async def test_the_housekeeping_purges_the_audit_log_unless_kept_for_good(db_url: str) -> None:
    for kept, expected in ((0.0, 3), (365 * 86400.0, 1)):
        settings = make_settings(db_url, audit_retention_seconds=kept)
        runtime = Runtime(settings, capabilities=[])
        await runtime.start(migrate_schema=True)
        try:
            async with runtime.db.transaction() as conn:
                await conn.execute(audit_log.delete())
                await conn.execute(jobs.delete())
            await _insert_audit(runtime, utcnow() - timedelta(days=400), 2)
            await _insert_audit(runtime, utcnow() - timedelta(days=1), 1)
            await _run_workers_until_purged(runtime)
            assert len(await _audit_ids(runtime)) == expected, kept
        finally:
            await runtime.close()


async def _insert_jobs(
    runtime: Runtime, made: datetime, status: str, count: int, *, finished: datetime | None
) -> list[str]:
    rows = runtime.queue.rows([("test.noop", {}, None, None)] * count)
    for n, row in enumerate(rows):
        row.update(id=made_at("job", made, n), status=status, created_at=made, updated_at=made)
        row["finished_at"] = finished
    async with runtime.db.transaction() as conn:
        await conn.execute(insert(jobs), rows)
    return [row["id"] for row in rows]


async def _job_ids(runtime: Runtime) -> set[str]:
    async with runtime.db.transaction() as conn:
        return set((await conn.execute(select(jobs.c.id))).scalars())


async def test_jobs_that_succeeded_past_the_retention_are_purged_in_batches(
    runtime: Runtime,
) -> None:
    now, week = utcnow(), timedelta(days=7)
    old_done = await _insert_jobs(runtime, now - timedelta(days=9), "succeeded", 5,
                                  finished=now - timedelta(days=8))  # fmt: skip
    # Made before the cutoff, finished after it: not old enough yet.
    late_done = await _insert_jobs(runtime, now - timedelta(days=8), "succeeded", 1,
                                   finished=now - timedelta(days=6))  # fmt: skip
    nine_days = now - timedelta(days=9)
    old_dead = await _insert_jobs(
        runtime, nine_days + timedelta(seconds=1), "dead", 2, finished=None
    )
    old_queued = await _insert_jobs(
        runtime, nine_days + timedelta(seconds=2), "queued", 1, finished=None
    )
    young_done = await _insert_jobs(runtime, now - timedelta(days=1), "succeeded", 2,
                                    finished=now - timedelta(days=1))  # fmt: skip

    assert await runtime.queue.purge_finished(week, batch=2) == 5  # 2 ids a transaction
    assert await _job_ids(runtime) == {*late_done, *old_dead, *old_queued, *young_done}
    assert not set(old_done) & await _job_ids(runtime)
    assert await runtime.queue.purge_finished(week) == 0
