"""``serve --demo`` for webhooks: a Stripe source to fire at, and a message delivered through an
endpoint of the demo tenant to a source of the same server, verified and logged there."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from interlink.api.app import create_app
from interlink.api.server import server_config
from interlink.runtime import Runtime
from interlink.store.schema import tenants
from interlink.webhooks.demo import LOOP, start_webhooks_demo
from interlink.webhooks.inbound import senders
from interlink.webhooks.inbound.capability import capability as inbound
from interlink.webhooks.inbound.sources import decrypt_secret, get_source
from interlink.webhooks.outbound.capability import capability as outbound
from tests.integration.webhooks.inbound.conftest import eventually, inbound_settings


@pytest.fixture
async def served(sqlite_url: str) -> AsyncIterator[tuple[Runtime, str]]:
    """``interlink serve --demo`` with the webhooks capabilities, on a port of its own."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # No egress allowance of the test's own: the demo must open loopback itself.
    settings = inbound_settings(sqlite_url, demo=True, port=port, egress_allow=[])
    runtime = Runtime(settings, capabilities=[inbound, outbound])
    config = server_config(create_app(runtime, migrate=True), host="127.0.0.1", port=port)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield runtime, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _events(http: httpx.AsyncClient, tenant: str, source: str) -> list[dict[str, Any]]:
    answer = await http.get(f"/v1/tenants/{tenant}/sources/{source}/events")
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_a_message_goes_round_to_the_demo_source_and_stripe_samples_land(
    served: tuple[Runtime, str],
) -> None:
    runtime, url = served
    admin = {"Authorization": f"Bearer {runtime.settings.admin_token.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=url, headers=admin) as http:
        tenants = (await http.get("/v1/tenants")).json()["data"]
        assert [t["name"] for t in tenants] == ["Demo"]  # made by the start, before any call
        made = (await http.get(f"/v1/tenants/{tenants[0]['id']}/endpoints")).json()["data"]
        demo = await start_webhooks_demo(runtime)  # found again, not remade
        assert [(e["id"], e["url"], e["description"]) for e in made] == [
            (demo.endpoint, f"{url}/in/{demo.loop_source}", LOOP)
        ]
        assert demo.loop_source in demo.describe() and demo.stripe_source in demo.describe()
        sent = await http.post(
            f"/v1/tenants/{demo.tenant_id}/messages",
            json={"event_type": "order.created", "payload": {"n": 1}},
        )
        assert sent.status_code == 202, sent.text

        async def arrived() -> bool:
            events = await _events(http, demo.tenant_id, demo.loop_source)
            return [(e["status"], e["event_type"]) for e in events] == [
                ("accepted", "order.created")
            ]

        await eventually(arrived)
        (logged,) = await _events(http, demo.tenant_id, demo.loop_source)
        assert logged["delivery_id"] == sent.json()["id"]  # the message id is the webhook-id

        async with runtime.db.transaction() as conn:
            source = await get_source(conn, demo.tenant_id, demo.stripe_source)
        assert source is not None
        signed = senders.sign_stripe(decrypt_secret(runtime.vault, source))
        fired = await http.post(f"/in/{demo.stripe_source}", content=signed.body,
                                headers=signed.headers)  # fmt: skip
        assert fired.status_code == 200, fired.text


async def test_a_restart_keeps_the_demo_and_follows_the_port(
    served: tuple[Runtime, str],
) -> None:
    runtime, url = served
    first = await start_webhooks_demo(runtime)
    # A restart on another port: a second runtime on the same store (not served).
    port = runtime.settings.port + 1
    restarted = Runtime(runtime.settings.model_copy(update={"port": port}),
                        capabilities=[inbound, outbound])  # fmt: skip
    await restarted.start(migrate_schema=False)
    try:
        moved = await start_webhooks_demo(restarted)
    finally:
        await restarted.close()
    assert moved == first
    admin = {"Authorization": f"Bearer {runtime.settings.admin_token.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=url, headers=admin) as http:
        listed = (await http.get(f"/v1/tenants/{first.tenant_id}/endpoints")).json()["data"]
        assert [e["url"] for e in listed] == [f"http://127.0.0.1:{port}/in/{first.loop_source}"]
        # The loop's source deleted: both halves are made anew, the old endpoint removed.
        assert (
            await http.delete(f"/v1/tenants/{first.tenant_id}/sources/{first.loop_source}")
        ).status_code == 204
        remade = await start_webhooks_demo(runtime)
        assert remade.stripe_source == first.stripe_source
        assert remade.loop_source != first.loop_source and remade.endpoint != first.endpoint
        listed = (await http.get(f"/v1/tenants/{first.tenant_id}/endpoints")).json()["data"]
        assert [e["id"] for e in listed] == [remade.endpoint]


async def test_only_the_serving_process_seeds_the_demo(sqlite_url: str) -> None:
    """A CLI command or a worker sharing INTERLINK_DEMO starts the runtime too: no seeding."""
    runtime = Runtime(inbound_settings(sqlite_url, demo=True), capabilities=[inbound, outbound])
    await runtime.start(migrate_schema=True)
    try:
        async with runtime.db.transaction() as conn:
            assert (await conn.execute(select(tenants.c.id))).all() == []
    finally:
        await runtime.close()
