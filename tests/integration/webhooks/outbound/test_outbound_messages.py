"""Messages: idempotency (also under a race), schemas, ordering, fan-out of internal events."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import orjson
from aiohttp import web
from sqlalchemy import func, select

from interlink.events import EventHead
from interlink.store.direct import run_transaction
from interlink.store.schema import jobs
from interlink.webhooks.outbound.fanout import EventFanout
from interlink.webhooks.outbound.schedule import RetrySchedule
from interlink.webhooks.outbound.state import configure
from interlink.webhooks.outbound.tables import outbound_deliveries, outbound_messages
from tests.integration.webhooks.outbound.outbound_support import (
    Received,
    eventually,
    new_endpoint,
    new_tenant,
    outbound_client,
    outbound_runtime,
    receiver,
    send,
)


async def test_a_repeated_id_is_the_same_message_even_when_racing(db_url: str) -> None:
    runtime = outbound_runtime(db_url)
    async with receiver() as sink, outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url)
        body = {"event_type": "invoice.paid", "payload": {"a": 1}, "id": "order-1"}
        answers = await asyncio.gather(
            *(client.post(f"/v1/tenants/{tenant}/messages", json=body) for _ in range(20))
        )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["id"] for a in answers}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 19
        header = {"Idempotency-Key": "order-2"}
        first = await client.post(
            f"/v1/tenants/{tenant}/messages", json=body | {"id": None}, headers=header
        )
        again = await client.post(
            f"/v1/tenants/{tenant}/messages", json=body | {"id": None}, headers=header
        )
        assert first.json()["id"] == again.json()["id"] != answers[0].json()["id"]
        other = await new_tenant(client, "Other")
        theirs = await client.post(f"/v1/tenants/{other}/messages", json=body)
        assert theirs.json()["id"] != answers[0].json()["id"]  # keys are per tenant
        async with runtime.db.transaction() as conn:
            messages = await conn.scalar(select(func.count()).select_from(outbound_messages))
            deliveries = await conn.scalar(select(func.count()).select_from(outbound_deliveries))
            queued = await conn.scalar(
                select(func.count()).select_from(jobs).where(jobs.c.kind == "outbound.deliver")
            )
        assert (messages, deliveries, queued) == (3, 2, 2)


async def test_payload_breaking_the_schema_is_refused_naming_the_field(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        schema = {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 0}},
        }
        made = await client.post(
            "/v1/event-types", json={"name": "invoice.paid", "description": "d", "schema": schema}
        )
        assert made.status_code == 201, made.text
        bad = await client.post(
            f"/v1/tenants/{tenant}/messages",
            json={"event_type": "invoice.paid", "payload": {"amount": -1}},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"][0]["field"] == "payload.amount"
        assert "minimum" in bad.json()["detail"]
        missing = await client.post(
            f"/v1/tenants/{tenant}/messages", json={"event_type": "invoice.paid", "payload": {}}
        )
        assert missing.json()["errors"][0]["field"] == "payload.amount"
        assert (await send(client, tenant, payload={"amount": 5}))["id"].startswith("msg_")
        broken = await client.post(
            "/v1/event-types", json={"name": "x.y", "schema": {"type": "nonsense"}}
        )
        assert broken.status_code == 422
        await client.patch("/v1/event-types/invoice.paid", json={"archived": True})
        archived = await client.post(
            f"/v1/tenants/{tenant}/messages",
            json={"event_type": "invoice.paid", "payload": {"amount": 1}},
        )
        assert archived.status_code == 422 and "archived" in archived.json()["detail"]
        listed = (await client.get("/v1/event-types")).json()["data"]
        assert listed == []
        listed = (await client.get("/v1/event-types?include_archived=true")).json()["data"]
        assert [t["name"] for t in listed] == ["invoice.paid"] and listed[0]["schema"] == schema


async def test_ordering_key_delivers_in_order_one_at_a_time_and_blocks_only_its_key(
    db_url: str,
) -> None:
    runtime = outbound_runtime(db_url)
    configure(runtime, schedule=RetrySchedule((0.05,) * 8, throttled_min_delay=0.05))
    seen: dict[str, list[int]] = defaultdict(list)
    busy: dict[str, int] = defaultdict(int)
    overlap: list[str] = []
    failures = {"a": 3}

    async def ordered(item: Received, _: int) -> web.StreamResponse:
        data = orjson.loads(item.body)["data"]
        key = data.get("key", "-")
        busy[key] += 1
        if busy[key] > 1 and key != "-":
            overlap.append(key)
        try:
            await asyncio.sleep(0.01)
            if data["n"] == 0 and failures.get(key, 0) > 0:
                failures[key] -= 1
                return web.Response(status=500)
            seen[key].append(data["n"])
            return web.Response(text="ok")
        finally:
            busy[key] -= 1

    async with receiver(ordered) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url)
        sends = []
        for n in range(10):
            for key in ("a", "b"):
                body = {"key": key, "n": n}
                sends.append(send(client, tenant, payload=body, ordering_key=key))
            sends.append(send(client, tenant, payload={"n": n}))
        for coroutine in sends:  # in order: the sequence is the order of acceptance
            await coroutine
        await eventually(lambda: len(seen["a"]) == 10 and len(seen["b"]) == 10)
        await eventually(lambda: len(seen["-"]) == 10)
        assert seen["a"] == list(range(10))
        assert seen["b"] == list(range(10))
        assert overlap == []
        assert sink.max_in_flight >= 1


async def test_the_fan_out_chooses_the_same_in_a_direct_transaction(db_url: str) -> None:
    # On SQLite the subscriptions come as JSON text, on PostgreSQL decoded by the driver.
    runtime = outbound_runtime(db_url)
    async with receiver() as sink, outbound_client(runtime, run_workers=False) as client:
        first, second, quiet = [await new_tenant(client, name) for name in "ABC"]
        updated, deleted = "dev.interlink.record.updated", "dev.interlink.record.deleted"
        await new_endpoint(client, first, url=sink.url + "/1", event_types=[updated])
        await new_endpoint(client, first, url=sink.url + "/2")  # every type but internal ones
        await new_endpoint(client, second, url=sink.url + "/3", event_types=[deleted, "a.b"])
        await new_endpoint(
            client, second, url=sink.url + "/4", event_types=[updated], disabled=True
        )
        heads = [
            EventHead(seq, tenant, kind)
            for seq, (tenant, kind) in enumerate(
                [(t, k) for t in (first, second, quiet, None) for k in (updated, deleted)], 1
            )
        ]
        fanout = EventFanout(runtime)
        async with runtime.db.transaction() as conn:
            chosen = sorted(await fanout.wanted(conn, heads))
        direct = await run_transaction(runtime.db, fanout.wanted_direct, heads)
        assert chosen == [1, 4]  # first takes updated, second deleted; nothing else
        assert sorted(direct) == chosen


async def test_internal_events_fan_out_to_endpoints_subscribed_by_name(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(
            client, tenant, url=sink.url + "/sub", event_types=["dev.interlink.record.updated"]
        )
        await new_endpoint(client, tenant, url=sink.url + "/all")
        async with runtime.db.transaction() as conn:
            event_id = await runtime.outbox.emit(
                conn, "record.updated", {"id": "rec_1"}, tenant_id=tenant, component="sync"
            )
        await eventually(lambda: len(sink.received) == 1)
        item = sink.received[0]
        assert item.path == "/hook/sub"
        body = orjson.loads(item.body)
        assert body["type"] == "dev.interlink.record.updated"
        assert body["data"]["id"] == event_id and body["data"]["data"] == {"id": "rec_1"}
        await asyncio.sleep(0.3)
        assert len(sink.received) == 1  # no feedback loop, nothing for "all" endpoints
