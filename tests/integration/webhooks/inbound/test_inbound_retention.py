"""Retention of the received-events log (``inbound.retention``): events past it that nothing
will happen to any more go with their forwards; events still being processed or forwarded stay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select

from interlink.ids import id_floor
from interlink.runtime import Runtime
from interlink.store.types import utcnow
from interlink.webhooks.inbound.retention import PURGE_JOB, purge_events
from interlink.webhooks.inbound.tables import inbound_events, inbound_forwards
from tests.integration.store_support import until_a_run_succeeded
from tests.integration.webhooks.inbound.conftest import eventually


def _event(tenant: str, source: str, moment: datetime, n: int, processing: str) -> dict[str, Any]:
    return {
        "id": f"{id_floor('evt', moment)[:-6]}{n:06d}", "tenant_id": tenant, "source_id": source,
        "status": "accepted", "dedupe_key": f"key-{n}", "verification": "verified",
        "method": "POST", "path_qs": f"/in/{source}", "headers": {}, "body": b"{}",
        "received_at": moment, "last_seen_at": moment, "processing_status": processing,
    }  # fmt: skip


def _forward(event: dict[str, Any], n: int, status: str) -> dict[str, Any]:
    return {
        "id": f"{event['id'][:-6]}F{n:05d}", "tenant_id": event["tenant_id"],
        "event_id": event["id"], "destination_id": "dst_gone", "status": status,
        "created_at": event["received_at"], "updated_at": event["received_at"],
    }  # fmt: skip


async def test_finished_events_past_the_retention_go_with_their_forwards(
    client: httpx.AsyncClient,
    inbound_runtime: Runtime,
    tenant: str,
    make_source: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    # The purge that starting workers ask for runs beside the test: once it has run it cannot
    # take the rows this test means to purge itself.
    await until_a_run_succeeded(inbound_runtime, PURGE_JOB)
    source = (await make_source("stripe", "whsec_retention"))["id"]
    old, young = utcnow() - timedelta(days=31), utcnow() - timedelta(days=29)
    statuses = ["processed", "processed", "skipped", "failed", "forwarding", "forwarding",
                "pending", "retrying"]  # fmt: skip
    rows = [_event(tenant, source, old, n, status) for n, status in enumerate(statuses)]
    rows.append(_event(tenant, source, young, 99, "processed"))
    forwards = [
        _forward(rows[4], 1, "succeeded"), _forward(rows[4], 2, "dead"),  # all delivered
        _forward(rows[5], 3, "succeeded"), _forward(rows[5], 4, "retrying"),  # one to go
    ]  # fmt: skip
    async with inbound_runtime.db.transaction() as conn:
        await conn.execute(insert(inbound_events), rows)
        await conn.execute(insert(inbound_forwards), forwards)

    assert await purge_events(inbound_runtime.db, timedelta(days=30), batch=2) == 5

    async with inbound_runtime.db.transaction() as conn:
        kept = set((await conn.execute(select(inbound_events.c.id))).scalars())
        kept_forwards = set((await conn.execute(select(inbound_forwards.c.id))).scalars())
    assert kept == {rows[5]["id"], rows[6]["id"], rows[7]["id"], rows[8]["id"]}
    assert kept_forwards == {forwards[2]["id"], forwards[3]["id"]}


async def test_the_purge_runs_at_start_and_then_every_hour(
    client: httpx.AsyncClient, inbound_runtime: Runtime
) -> None:
    def key(hour: datetime) -> str:
        return f"{PURGE_JOB}:{hour.isoformat()}"

    async def ran_and_rescheduled() -> bool:
        # The hour the runtime started in: now's, or the one before if the clock has passed
        # the hour since.
        now_hour = utcnow().replace(minute=0, second=0, microsecond=0)
        jobs = await inbound_runtime.queue.list(kind=PURGE_JOB)
        by_key = {job["idempotency_key"]: job["status"] for job in jobs}
        return any(
            set(by_key) == {key(hour), key(hour + timedelta(hours=1))}
            and by_key[key(hour)] == "succeeded"
            for hour in (now_hour, now_hour - timedelta(hours=1))
        )

    await eventually(ran_and_rescheduled)
