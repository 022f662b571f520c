"""A new message's deliveries go straight to this process's worker, with what it would read."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from sqlalchemy import select, update

from interlink.queue.worker import BatchContext
from interlink.store.schema import jobs
from interlink.store.types import utcnow
from interlink.webhooks.outbound.delivery import _COLUMNS
from interlink.webhooks.outbound.messages import DeliveryView
from interlink.webhooks.outbound.recording import Plan
from interlink.webhooks.outbound.state import outbound_state
from interlink.webhooks.outbound.tables import outbound_endpoints
from tests.integration.webhooks.outbound.outbound_support import (
    Received,
    attempts_of,
    eventually,
    new_endpoint,
    new_tenant,
    outbound_client,
    outbound_runtime,
    receiver,
    send,
)


def test_the_handed_view_has_exactly_the_columns_the_handler_loads() -> None:
    assert [field.name for field in dataclasses.fields(DeliveryView)] == [
        column.key for column in _COLUMNS
    ]


async def test_a_message_is_delivered_without_a_claim_and_retried_from_the_table(
    db_url: str,
) -> None:
    # No poll for a minute: only the hand-over (first attempt) and the retry's wake-up
    # (second attempt, claimed from the table) can deliver within the test.
    runtime = outbound_runtime(db_url, job_poll_seconds=60.0, retry_schedule="50ms")
    answers = iter([500, 200])
    looked = asyncio.Event()

    async def first_fails(item: Received, count: int) -> web.StreamResponse:
        if count == 1:
            await looked.wait()  # the first attempt stays in flight while the test looks
        return web.Response(status=next(answers))

    async with receiver(first_fails) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url, headers={"X-Customer": "c-7"})
        message = await send(client, tenant, payload={"amount": 7})
        await eventually(lambda: len(sink.received) >= 1)
        first = sink.received[0]
        assert first.headers["webhook-id"] == message["id"]
        assert first.headers["X-Customer"] == "c-7"
        assert orjson.loads(first.body)["data"] == {"amount": 7}
        async with runtime.db.transaction() as conn:
            query = select(jobs).where(jobs.c.kind == "outbound.deliver")
            (job,) = (await conn.execute(query)).mappings().all()
        looked.set()
        # Written leased, first attempt: a claim would have updated the row after its insert.
        assert (job["status"], job["attempts"]) == ("running", 1)
        assert job["worker_id"] is not None
        assert job["updated_at"] == job["created_at"]
        # The retry is claimed from the table (no memo) and sends the same bytes.

        def woken_and_received() -> bool:
            runtime.queue.wake()  # stands in for the poll, which is a minute away
            return len(sink.received) == 2

        await eventually(woken_and_received)
        assert sink.received[1].body == first.body

        # The receiver has the request before the worker records the answer: wait for the record.
        async def both_recorded() -> bool:
            return len(await attempts_of(client, tenant, message["id"])) == 2

        await eventually(both_recorded)
        attempts = await attempts_of(client, tenant, message["id"])
        assert sorted(a["response_status_code"] for a in attempts) == [200, 500]


async def _endpoint_after_a_change_in_flight(
    db_url: str,
    *,
    answer: int,
    meanwhile: dict[str, Any],
    failures: int,
    before: dict[str, Any] | None = None,
) -> Any:
    """Send one message and hold its first attempt while the endpoint's row is set to
    ``meanwhile`` (as another batch would), then let the receiver answer ``answer``.

    The row handed over with the job is the endpoint as it was (``before``, if given). Returns
    the endpoint's row once the outcome is recorded (``failures`` consecutive failures).
    """
    runtime = outbound_runtime(db_url)  # backoff from 50 ms doubling up to 200 ms
    release = asyncio.Event()

    async def held(item: Received, _: int) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=answer)

    async with receiver(held) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        this_endpoint = outbound_endpoints.c.id == endpoint["id"]

        async def change(values: dict[str, Any]) -> None:
            async with runtime.db.transaction() as conn:
                await conn.execute(update(outbound_endpoints).where(this_endpoint).values(**values))

        if before:
            await change(before)
        await send(client, tenant)
        await eventually(lambda: len(sink.received) == 1)
        await change(meanwhile)
        release.set()

        async def recorded() -> bool:
            got = await client.get(f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}")
            return bool(got.json()["health"]["consecutive_failures"] == failures)

        await eventually(recorded)
        async with runtime.db.transaction() as conn:
            return (await conn.execute(select(outbound_endpoints).where(this_endpoint))).one()


async def test_a_success_clears_failures_recorded_after_the_handed_row_was_read(
    db_url: str,
) -> None:
    # The handed row says "healthy"; while the attempt is in flight another batch records
    # failures. The success must clear what the table holds.
    row = await _endpoint_after_a_change_in_flight(
        db_url,
        answer=200,
        meanwhile={
            "consecutive_failures": 3,
            "first_failure_at": utcnow() - timedelta(minutes=5),
            "next_attempt_not_before": utcnow() + timedelta(hours=1),
        },
        failures=0,
    )
    assert row.first_failure_at is None and row.next_attempt_not_before is None
    assert row.last_success_at is not None


async def test_a_failure_does_not_disable_an_endpoint_that_succeeded_after_the_row_was_read(
    db_url: str,
) -> None:
    # The handed row says "failing for six days"; while the attempt is in flight another batch
    # records a success. The attempt then fails: that starts a new run of failures, it must
    # not disable the endpoint.
    succeeded_at = utcnow()
    row = await _endpoint_after_a_change_in_flight(
        db_url,
        answer=500,
        before={"consecutive_failures": 40, "first_failure_at": utcnow() - timedelta(days=6)},
        meanwhile={
            "consecutive_failures": 0,
            "first_failure_at": None,
            "last_success_at": succeeded_at,
        },
        failures=1,
    )
    assert row.disabled is False
    assert row.first_failure_at >= succeeded_at


async def test_a_failure_backs_off_by_the_failures_in_the_table_not_in_the_handed_row(
    db_url: str,
) -> None:
    # The handed row says "healthy"; while the attempt is in flight, other batches record 40
    # failures. This failure is the 41st: its backoff is the longest, not the first step.
    row = await _endpoint_after_a_change_in_flight(
        db_url,
        answer=500,
        meanwhile={"consecutive_failures": 40, "first_failure_at": utcnow()},
        failures=41,
    )
    assert row.next_attempt_not_before - row.last_failure_at == timedelta(milliseconds=200)


async def test_a_delivery_whose_outcome_waits_to_be_written_leaves_its_slot_to_the_next(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One slot, no poll: the second message goes out only if the first delivery gave its slot
    # back once sent, while its outcome still waits for the (held) group commit.
    runtime = outbound_runtime(db_url, job_poll_seconds=60.0, worker_concurrency=1)
    held = asyncio.Event()
    async with receiver() as sink, outbound_client(runtime) as client:
        recorder = outbound_state(runtime).recorder
        record = recorder.record

        async def held_record(ctx: BatchContext, plan: Plan) -> None:
            await held.wait()
            await record(ctx, plan)

        monkeypatch.setattr(recorder, "record", held_record)
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url)
        first = await send(client, tenant, payload={"n": 1})
        await eventually(lambda: len(sink.received) == 1)
        second = await send(client, tenant, payload={"n": 2})
        await eventually(lambda: len(sink.received) == 2)
        assert [item.headers["webhook-id"] for item in sink.received] == [first["id"], second["id"]]
        assert await attempts_of(client, tenant, first["id"]) == []  # still unwritten
        held.set()
        for message in (first, second):
            await eventually(lambda m=message: _succeeded(client, tenant, m["id"]))


async def _succeeded(client: Any, tenant: str, message_id: str) -> bool:
    return [a["status"] for a in await attempts_of(client, tenant, message_id)] == ["succeeded"]
