"""``interlink serve --demo``, webhooks: sources and an endpoint for the demo tenant.

- A Stripe source, to fire realistic signed samples at (``interlink sources fire``).
- A loop through both sides: an endpoint whose URL is a Standard Webhooks source of this same
  server, signed with that source's secret. A message POSTed to the API is stored, delivered
  signed, verified by the source and logged there, with nothing else running. The endpoint
  takes the application's own event types only (internal ``dev.interlink.*`` events reach an
  endpoint only when it names them), so what the source receives is not sent round again.

A restart finds what an earlier start made (by name and description) and points the endpoint at
the current port; if either half of the loop is gone, both are made anew. Loopback is allowed
to the outbound egress while ``demo`` is on (``webhooks.outbound.state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select

from interlink.connections.demo import DEMO_TENANT
from interlink.store.schema import tenants
from interlink.tenants.service import create_tenant
from interlink.webhooks.inbound import sources
from interlink.webhooks.inbound.state import inbound_state
from interlink.webhooks.inbound.tables import inbound_sources
from interlink.webhooks.outbound import endpoints
from interlink.webhooks.outbound.signing import generate_secret
from interlink.webhooks.outbound.state import outbound_state
from interlink.webhooks.outbound.tables import outbound_endpoints

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from interlink.runtime import Runtime

__all__ = ["LOOP", "STRIPE", "WebhooksDemo", "start_webhooks_demo"]

STRIPE = "demo stripe"
LOOP = "demo loop"
_ACTOR = "demo"


@dataclass(frozen=True)
class WebhooksDemo:
    """What ``--demo`` made for webhooks."""

    tenant_id: str
    stripe_source: str
    loop_source: str
    endpoint: str

    def describe(self) -> str:
        messages = f"/v1/tenants/{self.tenant_id}/messages"
        return (
            f"Webhooks: Stripe source {self.stripe_source}; try: interlink sources fire "
            f"{self.stripe_source} --provider stripe --count 3\n"
            f"  endpoint {self.endpoint} delivers to source {self.loop_source} on this server; "
            f'try: POST {messages} {{"event_type": "order.created", "payload": {{"n": 1}}}}, '
            f"then interlink sources events {self.loop_source}"
        )


def loop_url(runtime: Runtime, source_id: str) -> str:
    """Where the demo endpoint posts: the loop source on this server's own address."""
    settings = runtime.settings
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/in/{source_id}"


async def start_webhooks_demo(runtime: Runtime) -> WebhooksDemo:
    """Find or make the demo tenant's Stripe source and its loop (module docstring)."""
    registry = inbound_state(runtime).registry
    vault = runtime.vault
    out = outbound_state(runtime)
    async with runtime.db.transaction() as conn:
        tenant_id = await _demo_tenant(conn)
        stripe = await _newest(conn, inbound_sources, tenant_id, "name", STRIPE)
        if stripe is None:
            stripe = await sources.create_source(
                conn, vault, registry, tenant_id=tenant_id, provider="stripe",
                secret=generate_secret(), fields={"name": STRIPE},
            )  # fmt: skip
        loop = await _newest(conn, inbound_sources, tenant_id, "name", LOOP)
        endpoint = await _newest(conn, outbound_endpoints, tenant_id, "description", LOOP)
        if loop is None or endpoint is None:
            if endpoint is not None:  # its source is gone: it could only fail
                await endpoints.delete_endpoint(conn, tenant_id, endpoint["id"])
            secret = generate_secret()
            loop = await sources.create_source(
                conn, vault, registry, tenant_id=tenant_id, provider="standard-webhooks",
                secret=secret, fields={"name": LOOP},
            )  # fmt: skip
            endpoint, _ = await endpoints.create_endpoint(
                conn, vault, tenant_id=tenant_id,
                fields={"url": loop_url(runtime, loop["id"]), "description": LOOP},
                secret=secret, asymmetric=False, auth=None,
                default_timeout=out.config.default_timeout,
            )  # fmt: skip
        elif endpoint["url"] != (url := loop_url(runtime, loop["id"])):
            endpoint = await endpoints.update_endpoint(conn, vault, endpoint, {"url": url})
    return WebhooksDemo(tenant_id, stripe["id"], loop["id"], endpoint["id"])


async def _demo_tenant(conn: AsyncConnection) -> str:
    found = await conn.scalar(select(tenants.c.id).where(tenants.c.name == DEMO_TENANT))
    if found is not None:
        return str(found)
    return str((await create_tenant(conn, DEMO_TENANT, _ACTOR))["id"])


async def _newest(
    conn: AsyncConnection, table: Table, tenant_id: str, column: str, value: str
) -> dict[str, Any] | None:
    """The tenant's newest row of ``table`` whose ``column`` is ``value`` (ids sort by time)."""
    query = (
        select(table)
        .where(table.c.tenant_id == tenant_id, table.c[column] == value)
        .order_by(table.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None
