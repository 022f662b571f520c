"""``inbound.process`` jobs run in batches: one transaction, one failing job isolated."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.capability import capability as connections_capability
from interlink.queue import BatchContext
from interlink.runtime import Runtime
from interlink.webhooks.inbound import senders
from interlink.webhooks.inbound.capability import capability as inbound_capability
from interlink.webhooks.inbound.hooks import ReceivedWebhook, register_sync_trigger
from interlink.webhooks.inbound.processing import process_handler
from interlink.webhooks.inbound.writer import PROCESS_JOB
from tests.integration.webhooks.inbound.conftest import (
    hub_with,
    list_events,
    stripe_connection,
)

SECRET = "whsec_batch"


class FailingTrigger:
    """Fails for events of the ``failing`` connection, succeeds for the others."""

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.calls = 0
        self.triggered: list[str] = []

    async def trigger(self, conn: AsyncConnection, event: ReceivedWebhook) -> None:
        if event.connection_id == self.failing:
            self.calls += 1
            raise RuntimeError("the sync service is down")
        self.triggered.append(event.event_id)


@pytest.fixture
async def quiet_client(db_url: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    capabilities = [inbound_capability, connections_capability]
    async with hub_with(db_url, capabilities, run_workers=False) as pair:
        yield pair


async def _source(client: httpx.AsyncClient, tenant: str, **fields: str) -> str:
    answer = await client.post(
        f"/v1/tenants/{tenant}/sources", json={"provider": "stripe", "secret": SECRET, **fields}
    )
    assert answer.status_code == 201, answer.text
    source_id: str = answer.json()["id"]
    return source_id


async def _fire(client: httpx.AsyncClient, source_id: str) -> str:
    signed = senders.sign_stripe(SECRET)
    answer = await client.post(f"/in/{source_id}", content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text
    event_id: str = answer.json()["id"]
    return event_id


async def test_one_failing_job_is_retried_alone_while_the_batch_commits(
    quiet_client: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = quiet_client
    tenant = (await client.post("/v1/tenants", json={"name": "Batch"})).json()["id"]
    # Both sources belong to a connection, so each receipt gets a processing job.
    healthy = await stripe_connection(client, tenant)
    failing_connection = await stripe_connection(client, tenant)
    plain = await _source(client, tenant, connection_id=healthy)
    bound = await _source(client, tenant, connection_id=failing_connection)
    trigger = FailingTrigger(failing_connection)
    register_sync_trigger(runtime, trigger)
    fine = [await _fire(client, plain) for _ in range(3)]
    failing = await _fire(client, bound)
    jobs = await runtime.queue.claim("test-worker", [PROCESS_JOB], 10)
    assert len(jobs) == 4

    ctx = BatchContext(jobs, runtime.queue)
    await process_handler(runtime).handle(jobs, ctx)

    assert ctx.completed
    [(job_id, (reason, delay))] = ctx.outcomes.items()
    assert next(j for j in jobs if j.id == job_id).payload["event_id"] == failing
    assert "the sync service is down" in reason
    assert delay is not None
    assert trigger.calls == 2  # the whole batch, then the job alone in its savepoint
    processed = await list_events(client, tenant, plain)
    assert {row["id"] for row in processed} == set(fine)
    assert {row["processing_status"] for row in processed} == {"processed"}
    [row] = await list_events(client, tenant, bound)
    assert row["processing_status"] == "retrying"
    # The batch's transaction committed once: the triggers of the fine jobs ran in the first,
    # rolled-back attempt and again in their savepoints.
    assert sorted(set(trigger.triggered)) == sorted(fine)
    # webhook.received was emitted when each receipt was stored, failing processing or not.
    received = await runtime.outbox.list(tenant_id=tenant, type_="dev.interlink.webhook.received")
    assert sorted(e["data"]["received_event_id"] for e in received) == sorted([*fine, failing])
    for envelope in received:
        assert envelope["source"] == f"/interlink/{tenant}/webhooks"
        assert envelope["subject"] in (plain, bound)
        assert envelope["tenantid"] == tenant
    done = await runtime.queue.list(kind=PROCESS_JOB, status="succeeded")
    assert {job["id"] for job in done} == {j.id for j in jobs} - {job_id}
