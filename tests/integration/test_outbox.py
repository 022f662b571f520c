"""The transactional outbox and its relay; envelopes checked with the official cloudevents SDK."""

from __future__ import annotations

import asyncio

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from interlink.events import EventRelay, InMemorySubscriber
from interlink.runtime import Runtime


async def test_events_exist_only_when_the_change_commits(runtime: Runtime) -> None:
    with pytest.raises(RuntimeError):
        async with runtime.db.transaction() as conn:
            await runtime.outbox.emit(conn, "tenant.created", {}, tenant_id=None, component="x")
            raise RuntimeError("rolled back")
    assert await runtime.outbox.list(tenant_id=None) == []


async def test_relay_hands_events_on_in_order_and_once(runtime: Runtime) -> None:
    subscriber = InMemorySubscriber()
    relay = EventRelay(runtime.outbox, [subscriber], poll_seconds=0.05)
    async with runtime.db.transaction() as conn:
        for n in range(5):
            await runtime.outbox.emit(
                conn,
                "record.updated",
                {"n": n},
                tenant_id="ten_1",
                component="sync",
                subject="rec_1",
            )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(5):
            while len(subscriber.received) < 5:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    assert [event["data"]["n"] for event in subscriber.received] == [0, 1, 2, 3, 4]
    assert await relay.relay_once() == 0


async def test_envelope_is_valid_cloudevents(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await runtime.outbox.emit(
            conn,
            "webhook.received",
            {"provider": "stripe"},
            tenant_id="ten_1",
            component="webhooks",
            subject="src_1",
        )
    (envelope,) = await runtime.outbox.list(tenant_id="ten_1")
    import orjson

    event = JSONFormat().read(CloudEvent, orjson.dumps(envelope))
    assert event.get_type() == "dev.interlink.webhook.received"
    assert event.get_source() == "/interlink/ten_1/webhooks"
    assert event.get_subject() == "src_1"
    assert event.get_extension("tenantid") == "ten_1"
    assert event.get_data() == {"provider": "stripe"}
