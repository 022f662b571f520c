"""Worker side: the webhook.received event, routing and signed forwarding, sync triggers, replay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import standardwebhooks
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.capability import capability as connections_capability
from interlink.runtime import Runtime
from interlink.webhooks.inbound import senders
from interlink.webhooks.inbound.capability import capability as inbound_capability
from interlink.webhooks.inbound.hooks import ReceivedWebhook, register_sync_trigger
from tests.conftest import api_client
from tests.integration.webhooks.inbound.conftest import (
    eventually,
    inbound_settings,
    list_events,
    stripe_connection,
)

MakeSource = Callable[..., Awaitable[dict[str, Any]]]
SECRET = "whsec_processing"


class Receiver:
    """A real aiohttp server on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="busy")
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recorder = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield recorder, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


@pytest.fixture
async def connected(db_url: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """Inbound with the connections capability (sources must name a real connection), workers on.

    Stripe points at a closed local port, so the connections' health probe stays off the network.
    """
    settings = inbound_settings(db_url, provider_overrides=["stripe=http://127.0.0.1:9"])
    runtime = Runtime(settings, capabilities=[inbound_capability, connections_capability])
    async with api_client(runtime, run_workers=True) as http:
        yield runtime, http


async def _fire(client: httpx.AsyncClient, source: dict[str, Any], payload: Any = None) -> str:
    signed = senders.sign_stripe(SECRET, payload)
    answer = await client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text
    event_id: str = answer.json()["id"]
    return event_id


async def _event(client: httpx.AsyncClient, tenant: str, source: dict[str, Any], evt: str) -> Any:
    answer = await client.get(f"/v1/tenants/{tenant}/sources/{source['id']}/events/{evt}")
    assert answer.status_code == 200
    return answer.json()


async def test_received_event_is_emitted_and_forwarded_signed_per_standard_webhooks(
    client: httpx.AsyncClient,
    tenant: str,
    make_source: MakeSource,
    inbound_runtime: Runtime,
    receiver: tuple[Receiver, str],
) -> None:
    recorder, url = receiver
    source = await make_source("stripe", SECRET)
    created = await client.post(
        f"/v1/tenants/{tenant}/sources/{source['id']}/destinations",
        json={
            "url": url,
            "event_types": ["invoice.*"],
            "filter": {"data.object.currency": {"$in": ["usd", "eur"]}},
        },
    )
    assert created.status_code == 201, created.text
    destination = created.json()
    assert destination["secret"].startswith("whsec_")

    event_id = await _fire(client, source)
    other = {"id": "evt_skip", "type": "customer.created", "data": {"object": {"currency": "usd"}}}
    await _fire(client, source, other)

    await eventually(lambda: _done(client, tenant, source, event_id, "succeeded"))
    [(headers, body)] = recorder.received
    verified = standardwebhooks.Webhook(destination["secret"]).verify(body, headers)
    assert verified["type"] == "invoice.paid"
    assert headers["webhook-id"] == event_id
    assert headers["x-interlink-event-type"] == "invoice.paid"
    events = await inbound_runtime.outbox.list(
        tenant_id=tenant, type_="dev.interlink.webhook.received"
    )
    data = next(e["data"] for e in events if e["data"]["received_event_id"] == event_id)
    assert data["provider"] == "stripe"
    assert data["event_type"] == "invoice.paid"
    assert data["source_id"] == source["id"]
    assert data["delivery_id"].startswith("evt_")
    assert data["payload"]["type"] == "invoice.paid"


async def _done(
    client: httpx.AsyncClient, tenant: str, source: dict[str, Any], event_id: str, status: str
) -> bool:
    detail = await _event(client, tenant, source, event_id)
    return bool(detail["forwards"]) and detail["forwards"][-1]["status"] == status


async def test_failed_forward_is_retried_then_dead_lettered(
    client: httpx.AsyncClient,
    tenant: str,
    make_source: MakeSource,
    inbound_runtime: Runtime,
    receiver: tuple[Receiver, str],
) -> None:
    recorder, url = receiver
    recorder.fail_first = 1
    source = await make_source("stripe", SECRET)
    await client.post(
        f"/v1/tenants/{tenant}/sources/{source['id']}/destinations", json={"url": url}
    )

    retried = await _fire(client, source)
    await eventually(lambda: _done(client, tenant, source, retried, "succeeded"))
    forward = (await _event(client, tenant, source, retried))["forwards"][0]
    assert forward["attempts"] == 2
    assert len(recorder.received) == 2
    assert recorder.received[0][0]["webhook-id"] == recorder.received[1][0]["webhook-id"]

    recorder.fail_first = 100  # retry schedule 50ms,50ms: three attempts, then dead
    dead = await _fire(client, source)
    await eventually(lambda: _done(client, tenant, source, dead, "dead"))
    forward = (await _event(client, tenant, source, dead))["forwards"][0]
    assert forward["attempts"] == 3
    assert forward["response_status_code"] == 503
    failed = await inbound_runtime.outbox.list(
        tenant_id=tenant, type_="dev.interlink.webhook.failed"
    )
    assert failed[0]["data"]["received_event_id"] == dead


async def test_sync_trigger_runs_for_sources_with_a_connection(
    connected: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = connected
    created = await client.post("/v1/tenants", json={"name": "Acme"})
    assert created.status_code == 201, created.text
    tenant: str = created.json()["id"]
    connection = await stripe_connection(client, tenant)
    seen: list[ReceivedWebhook] = []

    class Recorder:
        async def trigger(self, conn: AsyncConnection, event: ReceivedWebhook) -> None:
            seen.append(event)

    async def make_source(**fields: str) -> dict[str, Any]:
        answer = await client.post(
            f"/v1/tenants/{tenant}/sources",
            json={"provider": "stripe", "secret": SECRET, **fields},
        )
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    register_sync_trigger(runtime, Recorder())
    bound = await make_source(connection_id=connection)
    unbound = await make_source()

    event_id = await _fire(client, bound)
    other = await _fire(client, unbound)

    async def processed() -> bool:
        rows = await list_events(client, tenant, unbound["id"])
        return bool(seen) and rows[0]["processing_status"] == "processed"

    await eventually(processed)
    assert [e.event_id for e in seen] == [event_id]
    assert seen[0].connection_id == connection
    assert seen[0].event_type == "invoice.paid"
    assert other not in [e.event_id for e in seen]


async def test_replay_one_and_a_time_range_reprocesses_with_new_jobs(
    inbound_runtime: Runtime,
    client: httpx.AsyncClient,
    tenant: str,
    make_source: MakeSource,
    receiver: tuple[Receiver, str],
) -> None:
    recorder, url = receiver
    source = await make_source("stripe", SECRET)
    await client.post(
        f"/v1/tenants/{tenant}/sources/{source['id']}/destinations", json={"url": url}
    )
    first = await _fire(client, source)
    second = await _fire(client, source)
    await eventually(lambda: _done(client, tenant, source, second, "succeeded"))
    await eventually(lambda: _done(client, tenant, source, first, "succeeded"))
    base = f"/v1/tenants/{tenant}/sources/{source['id']}"

    one = await client.post(f"{base}/events/{first}/replay")
    assert one.status_code == 202
    assert one.json()["replay"] == 1
    since = (await _event(client, tenant, source, first))["received_at"]
    everything = await client.post(f"{base}/replay", json={"since": since})
    assert everything.status_code == 202
    assert everything.json() == {"replayed": 2, "more": False}

    async def replayed() -> bool:
        detail = await _event(client, tenant, source, first)
        return len([f for f in detail["forwards"] if f["status"] == "succeeded"]) == 3

    await eventually(replayed)
    detail = await _event(client, tenant, source, first)
    assert detail["replay_count"] == 2
    assert sorted(f["replay"] for f in detail["forwards"]) == [0, 1, 2]
    received = await inbound_runtime.outbox.list(
        tenant_id=tenant, type_="dev.interlink.webhook.received"
    )
    assert len([e for e in received if e["data"]["received_event_id"] == first]) == 3
    assert len(recorder.received) == 5
    bad = await client.post(f"{base}/replay", json={"since": since, "until": since})
    assert bad.status_code == 422
