"""A receiver that fails (500, timeout, connection refused) and recovers gets every message,
and the attempts log tells the story; 410 disables; recover and resend deliver again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web
from sqlalchemy import select, update

from interlink.events.relay import InMemorySubscriber
from interlink.webhooks.outbound.schedule import RetrySchedule
from interlink.webhooks.outbound.state import configure
from interlink.webhooks.outbound.tables import outbound_deliveries, outbound_endpoints
from tests.integration.webhooks.outbound.outbound_support import (
    Received,
    Receiver,
    attempts_of,
    eventually,
    new_endpoint,
    new_tenant,
    outbound_client,
    outbound_runtime,
    receiver,
    send,
)

# Quick first retries, then a long tail: the refused endpoint's deliveries must still be
# retrying when its receiver comes up, however slowly a loaded machine gets there (its
# attempts share batches with the flaky endpoint's 1 s timeouts, so their pace varies).
FAST = RetrySchedule((0.05, 0.1, 0.2, 0.2, *(0.5,) * 24), throttled_min_delay=0.05)


async def test_failing_receiver_recovers_and_every_message_arrives(
    db_url: str, free_port: int
) -> None:
    runtime = outbound_runtime(db_url)
    configure(runtime, schedule=FAST)
    calls: dict[str, int] = {}

    async def flaky(item: Received, _: int) -> web.StreamResponse:
        number = calls[item.headers["webhook-id"]] = calls.get(item.headers["webhook-id"], 0) + 1
        if number == 1:
            return web.Response(status=500, text="boom", headers={"X-Trace": "t1"})
        if number == 2:
            await asyncio.sleep(1.5)  # past the endpoint's 1 s timeout
        return web.Response(text="ok")

    async with receiver(flaky) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url, timeout_seconds=1)
        refused = await new_endpoint(
            client, tenant, url=f"http://127.0.0.1:{free_port}/hook", timeout_seconds=1
        )
        sent = [await send(client, tenant, payload={"n": n}) for n in range(5)]
        ids = {message["id"] for message in sent}

        async def refused_twice() -> bool:
            log = await attempts_of(client, tenant, sent[0]["id"])
            return sum(a["error_class"] == "connection_refused" for a in log) >= 2

        await eventually(refused_twice)
        late = await Receiver().start(free_port)
        try:
            await eventually(lambda: {i for i in sink.ids() if calls.get(i, 0) >= 3} >= ids)
            await eventually(lambda: set(late.ids()) >= ids)
        finally:
            await late.stop()

        async def all_succeeded() -> bool:
            for message in sent:
                got = await client.get(f"/v1/tenants/{tenant}/messages/{message['id']}")
                if {d["status"] for d in got.json()["deliveries"]} != {"succeeded"}:
                    return False
            return True

        await eventually(all_succeeded)
        log = await attempts_of(client, tenant, sent[0]["id"])
        flaky_log = [a for a in log if a["endpoint_id"] != refused["id"]]
        assert [(a["status"], a["response_status_code"], a["error_class"]) for a in flaky_log] == [
            ("failed", 500, "http_status"),
            ("failed", None, "timeout"),
            ("succeeded", 200, None),
        ]
        assert flaky_log[0]["response_body"] == "boom"
        assert flaky_log[0]["response_headers"]["x-trace"] == "t1"
        refused_log = [a for a in log if a["endpoint_id"] == refused["id"]]
        assert refused_log[-1]["status"] == "succeeded"
        assert {a["error_class"] for a in refused_log[:-1]} == {"connection_refused"}
        message = (await client.get(f"/v1/tenants/{tenant}/messages/{sent[0]['id']}")).json()
        assert {d["status"] for d in message["deliveries"]} == {"succeeded"}
        health = (await client.get(f"/v1/tenants/{tenant}/endpoints/{refused['id']}")).json()
        assert health["health"]["consecutive_failures"] == 0


async def test_exhausted_delivery_fails_and_recover_resends_it(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url, retry_schedule="20ms,20ms")
    healthy = False
    events = InMemorySubscriber()
    runtime.extra_subscribers.append(events)

    async def down_then_up(item: Received, _: int) -> web.StreamResponse:
        return web.Response(status=200 if healthy else 503)

    async with receiver(down_then_up) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        message = await send(client, tenant)

        async def failed() -> bool:
            got = (await client.get(f"/v1/tenants/{tenant}/messages/{message['id']}")).json()
            return bool(got["deliveries"][0]["status"] == "failed")

        await eventually(failed)
        assert len(await attempts_of(client, tenant, message["id"])) == 3
        await eventually(lambda: any(e["type"].endswith("webhook.failed") for e in events.received))
        healthy = True
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        recovered = await client.post(
            f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}/recover", json={"since": since}
        )
        assert recovered.json() == {"resent": 1}
        await eventually(lambda: sink.received[-1:] and len(sink.received) == 4)

        async def fourth_recorded() -> bool:  # the answer is recorded after the receiver has it
            return len(await attempts_of(client, tenant, message["id"])) == 4

        await eventually(fourth_recorded)
        log = await attempts_of(client, tenant, message["id"])
        assert [a["status"] for a in log] == ["failed", "failed", "failed", "succeeded"]
        resent = await client.post(
            f"/v1/tenants/{tenant}/messages/{message['id']}/endpoints/{endpoint['id']}/resend"
        )
        assert resent.status_code == 202
        await eventually(lambda: len(sink.received) == 5)
        assert set(sink.ids()) == {message["id"]}
        await eventually(
            lambda: any(e["type"].endswith("webhook.delivered") for e in events.received)
        )


async def test_gone_disables_the_endpoint_at_once(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    events = InMemorySubscriber()
    runtime.extra_subscribers.append(events)

    async def gone(item: Received, _: int) -> web.StreamResponse:
        return web.Response(status=410)

    async with receiver(gone) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        await send(client, tenant)

        async def disabled() -> bool:
            got = await client.get(f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}")
            return bool(got.json()["disabled"])

        await eventually(disabled)
        await eventually(
            lambda: any(e["type"] == "dev.interlink.endpoint.disabled" for e in events.received)
        )
        got = (await client.get(f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}")).json()
        assert "410" in got["disabled_reason"]
        await send(client, tenant)
        await asyncio.sleep(0.3)
        assert len(sink.received) == 1  # a disabled endpoint gets nothing new


async def test_long_failing_endpoint_is_disabled_and_backs_off(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url, retry_schedule="20ms")
    async with receiver(lambda *_: _status(500)) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        await send(client, tenant)
        await eventually(lambda: len(sink.received) == 2)

        async def two_failures() -> bool:
            row = await _endpoint_row(runtime, endpoint["id"])
            return bool(row.consecutive_failures == 2 and row.next_attempt_not_before)

        await eventually(two_failures)
        # Five days of continuous failure: the next failure disables it.
        from sqlalchemy import update

        from interlink.webhooks.outbound.tables import outbound_endpoints

        async with runtime.db.transaction() as conn:
            await conn.execute(
                update(outbound_endpoints)
                .where(outbound_endpoints.c.id == endpoint["id"])
                .values(
                    first_failure_at=datetime.now(UTC) - timedelta(days=5, minutes=1),
                    next_attempt_not_before=None,
                )
            )
        await send(client, tenant)
        await eventually(lambda: len(sink.received) >= 3)

        async def disabled() -> bool:
            return bool((await _endpoint_row(runtime, endpoint["id"])).disabled)

        await eventually(disabled)
        enabled = await client.patch(
            f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}", json={"disabled": False}
        )
        assert enabled.json()["health"]["consecutive_failures"] == 0


async def _status(code: int) -> web.StreamResponse:
    return web.Response(status=code)


async def _endpoint_row(runtime: object, endpoint_id: str) -> object:
    from interlink.runtime import Runtime
    from interlink.webhooks.outbound.tables import outbound_endpoints

    assert isinstance(runtime, Runtime)
    async with runtime.db.transaction() as conn:
        query = select(outbound_endpoints).where(outbound_endpoints.c.id == endpoint_id)
        return (await conn.execute(query)).one()


async def test_a_late_outcome_of_an_older_attempt_does_not_undo_a_resend(db_url: str) -> None:
    # The first attempt is held while the message is resent; the resend succeeds, then the
    # first attempt fails. That failure belongs to the old generation: it is logged, but it
    # must not put the delivery back to pending (where nothing would ever finish it).
    runtime = outbound_runtime(db_url, retry_schedule="50ms")
    release = asyncio.Event()

    async def first_held_then_failed(item: Received, count: int) -> web.StreamResponse:
        if count == 1:
            await release.wait()
            return web.Response(status=500)
        return web.Response(text="ok")

    async with receiver(first_held_then_failed) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        message = await send(client, tenant)
        await eventually(lambda: len(sink.received) == 1)
        resent = await client.post(
            f"/v1/tenants/{tenant}/messages/{message['id']}/endpoints/{endpoint['id']}/resend"
        )
        assert resent.status_code in (200, 202), resent.text

        async def resend_recorded() -> bool:
            attempts = await attempts_of(client, tenant, message["id"])
            return [a["response_status_code"] for a in attempts] == [200]

        await eventually(resend_recorded)
        release.set()

        async def both_recorded() -> bool:
            attempts = await attempts_of(client, tenant, message["id"])
            return sorted(a["response_status_code"] for a in attempts) == [200, 500]

        await eventually(both_recorded)
        await asyncio.sleep(0.3)  # room for the old attempt's retry, which must do nothing
        async with runtime.db.transaction() as conn:
            query = select(outbound_deliveries.c.status, outbound_deliveries.c.generation)
            (row,) = (await conn.execute(query)).all()
        assert (row.status, row.generation) == ("succeeded", 1)
        assert len(sink.received) == 2


async def test_a_late_outcome_of_an_older_attempt_keeps_its_ordering_key_waiting(
    db_url: str,
) -> None:
    # The key's head is resent while its first attempt is in flight. When that old attempt
    # succeeds, the key must still wait for the resend: the next message goes out only after.
    runtime = outbound_runtime(db_url)
    first, second = asyncio.Event(), asyncio.Event()
    order: list[tuple[int, str]] = []

    async def held(item: Received, _: int) -> web.StreamResponse:
        n = orjson.loads(item.body)["data"]["n"]
        order.append((n, "arrived"))
        if n == 0:
            await (first if order.count((0, "arrived")) == 1 else second).wait()
            order.append((0, "done"))
        return web.Response(text="ok")

    async with receiver(held) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        head = await send(client, tenant, payload={"n": 0}, ordering_key="k")
        await send(client, tenant, payload={"n": 1}, ordering_key="k")
        await eventually(lambda: len(sink.received) == 1)
        resent = await client.post(
            f"/v1/tenants/{tenant}/messages/{head['id']}/endpoints/{endpoint['id']}/resend"
        )
        assert resent.status_code in (200, 202), resent.text
        await eventually(lambda: len(sink.received) == 2)  # the resend, held too
        first.set()

        async def old_attempt_recorded() -> bool:
            return len(await attempts_of(client, tenant, head["id"])) == 1

        await eventually(old_attempt_recorded)
        await asyncio.sleep(0.3)  # room for the next message, which must not go out yet
        assert [n for n, what in order if what == "arrived"] == [0, 0]
        second.set()
        await eventually(lambda: (1, "arrived") in order)
        assert order == [(0, "arrived"), (0, "arrived"), (0, "done"), (0, "done"), (1, "arrived")]


async def test_a_schedule_stored_beyond_the_bound_still_delivers(sqlite_url: str) -> None:
    """Before retry delays were bounded to 30 days, an endpoint could store 99999999999d: its
    delivery job then failed on every try (the next attempt's date overflowed) and the message
    stayed pending, never attempted. Stored so, it is now attempted and retried 30 days on."""
    runtime = outbound_runtime(sqlite_url)
    async with outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        refused = await client.post(f"/v1/tenants/{tenant}/endpoints",
                                    json={"url": "http://127.0.0.1:9/", "retry_schedule": "5s,400d"})  # fmt: skip
        assert refused.status_code == 422 and "longer than the longest" in refused.text
        endpoint = await new_endpoint(client, tenant, url="http://127.0.0.1:9/hook")
        async with runtime.db.transaction() as conn:
            await conn.execute(
                update(outbound_endpoints)
                .where(outbound_endpoints.c.id == endpoint["id"])
                .values(retry_schedule="99999999999d")
            )
        message = await send(client, tenant)

        async def retry_scheduled() -> bool:
            got = (await client.get(f"/v1/tenants/{tenant}/messages/{message['id']}")).json()
            delivery = got["deliveries"][0]
            return bool(delivery["attempts"] == 1 and delivery["next_attempt_at"])

        await eventually(retry_scheduled)
        got = (await client.get(f"/v1/tenants/{tenant}/messages/{message['id']}")).json()
        due = datetime.fromisoformat(got["deliveries"][0]["next_attempt_at"])
        assert timedelta(days=20) < due - datetime.now(UTC) < timedelta(days=40)
        [attempt] = await attempts_of(client, tenant, message["id"])
        assert attempt["error_class"] == "connection_refused"
