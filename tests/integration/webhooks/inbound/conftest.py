"""Fixtures of the inbound-webhook tests: a runtime with the capability, a tenant and sources."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx
import pytest

from interlink.capability import Capability
from interlink.runtime import Runtime
from interlink.webhooks.inbound.capability import capability
from tests.conftest import api_client, make_settings

PUBLIC_URL = "https://hooks.example.com"


def inbound_settings(url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "egress_allow": ["127.0.0.1/32"],
        "retry_schedule": "50ms,50ms",
        "job_poll_seconds": 0.05,
    }
    values.update(overrides)
    return make_settings(url, **values)


@contextlib.asynccontextmanager
async def hub_with(
    db_url: str, capabilities: Sequence[Capability], *, run_workers: bool
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A runtime of ``capabilities`` on the inbound settings, and an admin client of its API."""
    runtime = Runtime(inbound_settings(db_url), capabilities=list(capabilities))
    async with api_client(runtime, run_workers=run_workers) as http:
        yield runtime, http


@pytest.fixture
async def inbound_runtime(db_url: str) -> Runtime:
    return Runtime(inbound_settings(db_url), capabilities=[capability])


@pytest.fixture
async def client(inbound_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(inbound_runtime, run_workers=True) as http:
        yield http


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/tenants", json={"name": "Acme"})
    assert response.status_code == 201, response.text
    tenant_id: str = response.json()["id"]
    return tenant_id


@pytest.fixture
def make_source(client: httpx.AsyncClient, tenant: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def create(provider: str, secret: str, **fields: Any) -> dict[str, Any]:
        response = await client.post(
            f"/v1/tenants/{tenant}/sources", json={"provider": provider, "secret": secret, **fields}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return create


async def stripe_connection(client: httpx.AsyncClient, tenant: str) -> str:
    """A stripe API-key connection of ``tenant`` (not verified), for sources to belong to."""
    answer = await client.post(
        f"/v1/tenants/{tenant}/connections",
        json={
            "provider": "stripe",
            "auth_type": "api_key",
            "credentials": {"api_key": "sk_test_inbound"},
            "verify": False,
        },
    )
    assert answer.status_code == 201, answer.text
    connection_id: str = answer.json()["id"]
    return connection_id


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def list_events(
    client: httpx.AsyncClient, tenant: str, source_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/tenants/{tenant}/sources/{source_id}/events", params={"limit": 200, **params}
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data
