"""Helpers of the outbound-webhook tests: a real receiver on 127.0.0.1 and a wired runtime."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from interlink.runtime import Runtime
from interlink.webhooks.outbound.capability import capability
from tests.conftest import api_client, make_settings

Behaviour = Callable[["Received", int], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """An aiohttp app that records what arrives and answers as ``behaviour`` says."""

    behaviour: Behaviour | None = None
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        item = Received(dict(request.headers), await request.read(), request.path)
        self.received.append(item)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.behaviour is None:
                return web.Response(text="ok")
            return await self.behaviour(item, len(self.received))
        finally:
            self.in_flight -= 1

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> list[str]:
        return [item.headers["webhook-id"] for item in self.received]


@contextlib.asynccontextmanager
async def receiver(behaviour: Behaviour | None = None) -> AsyncIterator[Receiver]:
    """A started :class:`Receiver`, stopped afterwards."""
    started = await Receiver(behaviour).start()
    try:
        yield started
    finally:
        await started.stop()


def outbound_settings(url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "egress_allow": ["127.0.0.1/32"],
        "retry_schedule": "50ms,100ms,200ms",
        "job_poll_seconds": 0.05,
    }
    values.update(overrides)
    return make_settings(url, **values)


def outbound_runtime(url: str, **overrides: Any) -> Runtime:
    return Runtime(outbound_settings(url, **overrides), capabilities=[capability])


@contextlib.asynccontextmanager
async def outbound_client(
    runtime: Runtime, *, run_workers: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(runtime, run_workers=run_workers) as client:
        yield client


async def new_tenant(client: httpx.AsyncClient, name: str = "Acme") -> str:
    response = await client.post("/v1/tenants", json={"name": name})
    assert response.status_code == 201, response.text
    tenant_id: str = response.json()["id"]
    return tenant_id


async def new_endpoint(client: httpx.AsyncClient, tenant: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/tenants/{tenant}/endpoints", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(client: httpx.AsyncClient, tenant: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("event_type", "invoice.paid")
    fields.setdefault("payload", {"amount": 100})
    response = await client.post(f"/v1/tenants/{tenant}/messages", json=fields)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def attempts_of(
    client: httpx.AsyncClient, tenant: str, message_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/tenants/{tenant}/messages/{message_id}/attempts", params={"limit": 200}
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.03)
