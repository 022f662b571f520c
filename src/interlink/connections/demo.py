"""``interlink serve --demo``: the built-in simulators, and a tenant wired to them.

On start (when the settings say ``demo``), the stripe, salesforce, hubspot and github
simulators are served in this process on 127.0.0.1, the catalog points those providers at them,
and the tenant ``Demo`` gets fresh OAuth apps, one connection per simulator (tokens minted by
the simulators, so no browser dance is needed) and a new API key, printed once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import delete, select

from interlink.connections import apps, service
from interlink.connections.state import ConnectionsState, connections_state
from interlink.connections.tables import connections
from interlink.egress import AddressPolicy, EgressClient, parse_allow_list
from interlink.ids import new_id
from interlink.store.schema import tenants
from interlink.tenants.service import create_api_key, create_tenant

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["DEMO_TENANT", "DemoTenant", "start_demo", "stop_demo"]

DEMO_TENANT = "Demo"
_ACTOR = "demo"


async def _mint(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/_sim/tokens") as answer:
        payload: dict[str, Any] = await answer.json()
    return payload


@dataclass(frozen=True)
class DemoTenant:
    """What ``--demo`` made: the tenant, its API key (shown once) and the simulators' URLs."""

    tenant_id: str
    api_key: str
    simulators: dict[str, str]

    def describe(self) -> str:
        urls = ", ".join(f"{name} {url}" for name, url in self.simulators.items())
        return (
            f"Demo tenant {self.tenant_id} (simulators: {urls}); its API key, shown once: "
            f"{self.api_key}\n  try: GET /v1/tenants/{self.tenant_id}/connections, then "
            "GET /v1/proxy/{connection_id}/v1/customers"
        )


async def start_demo(runtime: Runtime) -> DemoTenant:
    """Serve the simulators and seed the demo tenant."""
    from interlink.simulators import (
        SIM_CLIENT_ID,
        SIM_CLIENT_SECRET,
        SIMULATOR_NAMES,
        serve_simulator,
    )

    await stop_demo(runtime)
    state = connections_state(runtime)
    stack = contextlib.AsyncExitStack()
    state.extras["demo_stack"] = stack
    origins = {}
    for name in SIMULATOR_NAMES:
        running = await stack.enter_async_context(serve_simulator(name, records=100))
        origins[name] = running.url
    state.use_catalog(state.catalog.with_overrides(origins))
    await _allow_loopback(state)
    async with runtime.db.transaction() as conn:
        tenant_id = await conn.scalar(select(tenants.c.id).where(tenants.c.name == DEMO_TENANT))
        if tenant_id is None:
            tenant_id = (await create_tenant(conn, DEMO_TENANT, _ACTOR))["id"]
        await conn.execute(delete(connections).where(connections.c.tenant_id == tenant_id))
        for name in SIMULATOR_NAMES:
            await apps.upsert_app(
                conn, runtime.vault, tenant_id=tenant_id, provider=name,
                client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET, scopes=None,
            )  # fmt: skip
        key = await create_api_key(conn, _ACTOR, tenant_id=tenant_id, name="demo")
    for name in SIMULATOR_NAMES:
        await _connect(state, tenant_id, name, origins[name])
    return DemoTenant(tenant_id, key.key, origins)


async def _allow_loopback(state: ConnectionsState) -> None:
    allow = [*state.runtime.settings.egress_allow, "127.0.0.1/32"]
    old = state.egress
    state.egress = EgressClient(
        address_policy=AddressPolicy(allow=parse_allow_list(allow)),
        timeouts=old.timeouts,
        limit=0,
        breakers=state.breakers,
        rate_limiter=state.limiter,
        max_body_bytes=old.max_body_bytes,
        user_agent="Interlink/1.0",
    )
    await old.close()


async def _connect(state: ConnectionsState, tenant_id: str, name: str, url: str) -> None:
    runtime = state.runtime
    if name == "stripe":
        auth_type, secrets, config, expires = "api_key", {"api_key": "sk_test_demo"}, {}, None
    else:
        minted = await _mint(url)
        auth_type, expires = "oauth2", minted.get("expires_in")
        secrets = {k: minted[k] for k in ("access_token", "refresh_token") if minted.get(k)}
        config = {"instance_url": minted["instance_url"]} if name == "salesforce" else {}
        if name == "salesforce":
            expires = 7200
    async with runtime.db.transaction() as conn:
        await service.insert_connection(
            conn, runtime.vault, connection_id=new_id("con"), tenant_id=tenant_id,
            provider=name, auth_type=auth_type, credentials=secrets, config=config,
            expires_in=expires, name=f"{name} simulator",
        )  # fmt: skip


async def stop_demo(runtime: Runtime) -> None:
    """Stop the simulators started by :func:`start_demo`."""
    stack = connections_state(runtime).extras.pop("demo_stack", None)
    if stack is not None:
        await stack.aclose()
