"""A source's ``connection_id`` must name a connection of the same tenant, checked on write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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

SECRET = "whsec_source_connection"
MISSING = "con_01J0000000000000000000000"


@pytest.fixture
async def hub(db_url: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """Inbound and connections together, workers off (processing is run by hand)."""
    capabilities = [inbound_capability, connections_capability]
    async with hub_with(db_url, capabilities, run_workers=False) as pair:
        yield pair


async def _tenant(client: httpx.AsyncClient, name: str) -> str:
    answer = await client.post("/v1/tenants", json={"name": name})
    assert answer.status_code == 201, answer.text
    tenant_id: str = answer.json()["id"]
    return tenant_id


def _create(client: httpx.AsyncClient, tenant: str, **fields: Any) -> Any:
    return client.post(
        f"/v1/tenants/{tenant}/sources",
        json={"provider": "stripe", "secret": SECRET, **fields},
    )


def _assert_unknown_connection(answer: httpx.Response, connection_id: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "https://interlink.dev/problems/validation-error"
    assert problem["status"] == 422
    assert problem["detail"] == f"connection_id: connection {connection_id} does not exist"
    assert problem["errors"] == [
        {"field": "connection_id", "message": f"connection {connection_id} does not exist"}
    ]


async def _sources(client: httpx.AsyncClient, tenant: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/tenants/{tenant}/sources")
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_create_refuses_a_missing_or_foreign_connection_alike(
    hub: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _, client = hub
    tenant = await _tenant(client, "Acme")
    other = await _tenant(client, "Globex")
    foreign = await stripe_connection(client, other)

    missing = await _create(client, tenant, connection_id=MISSING)
    _assert_unknown_connection(missing, MISSING)
    stolen = await _create(client, tenant, connection_id=foreign)
    _assert_unknown_connection(stolen, foreign)
    # The same answer either way: nothing tells that the foreign connection exists.
    assert missing.json().keys() == stolen.json().keys()
    assert stolen.json()["detail"].replace(foreign, MISSING) == missing.json()["detail"]

    assert await _sources(client, tenant) == []
    assert await _sources(client, other) == []


async def test_create_stores_a_connection_of_the_same_tenant(
    hub: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _, client = hub
    tenant = await _tenant(client, "Acme")
    connection = await stripe_connection(client, tenant)

    created = await _create(client, tenant, connection_id=connection)
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["connection_id"] == connection
    fetched = await client.get(f"/v1/tenants/{tenant}/sources/{source['id']}")
    assert fetched.json()["connection_id"] == connection


async def test_patch_to_an_unknown_connection_leaves_the_source_unchanged(
    hub: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _, client = hub
    tenant = await _tenant(client, "Acme")
    other = await _tenant(client, "Globex")
    mine = await stripe_connection(client, tenant)
    foreign = await stripe_connection(client, other)
    created = await _create(client, tenant, connection_id=mine, name="Stripe live")
    assert created.status_code == 201, created.text
    url = f"/v1/tenants/{tenant}/sources/{created.json()['id']}"
    before = (await client.get(url)).json()

    for bad in (MISSING, foreign):
        answer = await client.patch(url, json={"name": "renamed", "connection_id": bad})
        _assert_unknown_connection(answer, bad)
    assert (await client.get(url)).json() == before

    unbound = await client.patch(url, json={"connection_id": None})
    assert unbound.status_code == 200, unbound.text
    assert unbound.json()["connection_id"] is None
    rebound = await client.patch(url, json={"connection_id": mine})
    assert rebound.status_code == 200, rebound.text
    assert rebound.json()["connection_id"] == mine


async def test_a_connection_deleted_later_leaves_the_source_working(
    hub: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = hub
    tenant = await _tenant(client, "Acme")
    connection = await stripe_connection(client, tenant)
    created = await _create(client, tenant, connection_id=connection)
    assert created.status_code == 201, created.text
    source = created.json()
    seen: list[str] = []

    class Recorder:
        async def trigger(self, conn: AsyncConnection, event: ReceivedWebhook) -> None:
            seen.append(event.connection_id)

    register_sync_trigger(runtime, Recorder())
    deleted = await client.delete(f"/v1/tenants/{tenant}/connections/{connection}")
    assert deleted.status_code == 204, deleted.text

    # The source keeps the id; its webhooks are still accepted and processed, and the sync
    # triggers are told the (now dangling) connection id.
    fetched = await client.get(f"/v1/tenants/{tenant}/sources/{source['id']}")
    assert fetched.json()["connection_id"] == connection
    signed = senders.sign_stripe(SECRET)
    answer = await client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text
    jobs = await runtime.queue.claim("test-worker", [PROCESS_JOB], 10)
    assert len(jobs) == 1
    ctx = BatchContext(jobs, runtime.queue)
    await process_handler(runtime).handle(jobs, ctx)
    assert ctx.completed
    assert not ctx.outcomes
    [event] = await list_events(client, tenant, source["id"])
    assert event["processing_status"] == "processed"
    assert seen == [connection]
    # Naming it again is refused like any unknown connection.
    again = await client.patch(
        f"/v1/tenants/{tenant}/sources/{source['id']}", json={"connection_id": connection}
    )
    _assert_unknown_connection(again, connection)


async def test_without_the_connections_capability_every_connection_id_is_unknown(
    client: httpx.AsyncClient, tenant: str
) -> None:
    # ``client`` runs the inbound capability alone: there is no connections table to look in.
    answer = await _create(client, tenant, connection_id=MISSING)
    _assert_unknown_connection(answer, MISSING)
    assert await _sources(client, tenant) == []
