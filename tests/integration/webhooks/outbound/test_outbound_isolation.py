"""A slow receiver holds up only its own deliveries: the worker batches each endpoint apart."""

from __future__ import annotations

import asyncio

from aiohttp import web

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


async def test_a_held_receiver_does_not_delay_another_endpoints_outcomes(db_url: str) -> None:
    runtime = outbound_runtime(db_url)
    release = asyncio.Event()

    async def held(item: Received, _: int) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="ok")

    async with (
        receiver(held) as slow_sink,
        receiver() as fast_sink,
        outbound_client(runtime) as client,
    ):
        tenant = await new_tenant(client)
        slow = await new_endpoint(client, tenant, url=slow_sink.url, timeout_seconds=30)
        fast = await new_endpoint(client, tenant, url=fast_sink.url)
        # Each message goes to both endpoints: its two deliveries are handed over together.
        sent = [await send(client, tenant, payload={"n": n}) for n in range(3)]
        await eventually(lambda: len(slow_sink.received) == 3 and len(fast_sink.received) == 3)

        async def statuses() -> dict[str, set[str]]:
            found: dict[str, set[str]] = {slow["id"]: set(), fast["id"]: set()}
            for message in sent:
                got = await client.get(f"/v1/tenants/{tenant}/messages/{message['id']}")
                for delivery in got.json()["deliveries"]:
                    found[delivery["endpoint_id"]].add(delivery["status"])
            return found

        async def fast_recorded() -> bool:
            return (await statuses())[fast["id"]] == {"succeeded"}

        await eventually(fast_recorded)
        assert (await statuses())[slow["id"]] == {"pending"}  # still in flight
        release.set()

        async def all_recorded() -> bool:
            return set().union(*(await statuses()).values()) == {"succeeded"}

        await eventually(all_recorded)
