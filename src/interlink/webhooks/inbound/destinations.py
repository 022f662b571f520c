"""Destinations: the tenant's internal HTTP endpoints a source's events are forwarded to.

Each destination is a routing rule (event types and a payload filter) and a URL; its ``whsec_``
signing secret is generated here, encrypted by the vault, and shown to its tenant on request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.store.types import utcnow
from interlink.vault import Vault
from interlink.webhooks.inbound.forwarding import destination_secret_context
from interlink.webhooks.inbound.routing import check_rules
from interlink.webhooks.inbound.tables import inbound_destinations
from interlink.webhooks.outbound.signing import generate_secret

__all__ = [
    "create_destination",
    "delete_destination",
    "destination_secret",
    "get_destination",
    "list_destinations",
    "public_destination",
    "update_destination",
]


def public_destination(row: Mapping[str, Any]) -> dict[str, Any]:
    """The API view of a destination: everything but the secret."""
    return {key: value for key, value in row.items() if key != "secret"}


async def create_destination(
    conn: AsyncConnection,
    vault: Vault,
    *,
    tenant_id: str,
    source_id: str,
    fields: Mapping[str, Any],
) -> tuple[dict[str, Any], str]:
    """Store a destination; returns the row and its new signing secret (in clear)."""
    check_rules(fields.get("event_types"), fields.get("filter"))
    destination_id = new_id("dst")
    secret = generate_secret()
    now = utcnow()
    row: dict[str, Any] = {
        "id": destination_id,
        "tenant_id": tenant_id,
        "source_id": source_id,
        "url": fields["url"],
        "secret": vault.encrypt(secret, context=destination_secret_context(destination_id)),
        "description": fields.get("description") or "",
        "event_types": fields.get("event_types"),
        "filter": fields.get("filter"),
        "enabled": fields.get("enabled", True),
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(inbound_destinations.insert().values(**row))
    return row, secret


async def get_destination(
    conn: AsyncConnection, tenant_id: str, source_id: str, destination_id: str
) -> dict[str, Any] | None:
    query = select(inbound_destinations).where(
        inbound_destinations.c.id == destination_id,
        inbound_destinations.c.source_id == source_id,
        inbound_destinations.c.tenant_id == tenant_id,
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_destinations(
    conn: AsyncConnection, tenant_id: str, source_id: str, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(inbound_destinations)
        .where(
            inbound_destinations.c.source_id == source_id,
            inbound_destinations.c.tenant_id == tenant_id,
        )
        .order_by(inbound_destinations.c.id)
        .limit(limit)
    )
    if after:
        query = query.where(inbound_destinations.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def update_destination(
    conn: AsyncConnection, current: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    merged = {**current, **changes}
    check_rules(merged["event_types"], merged["filter"])
    values = {**changes, "updated_at": utcnow()}
    await conn.execute(
        update(inbound_destinations)
        .where(inbound_destinations.c.id == current["id"])
        .values(**values)
    )
    return {**current, **values}


async def delete_destination(conn: AsyncConnection, destination_id: str) -> None:
    await conn.execute(
        delete(inbound_destinations).where(inbound_destinations.c.id == destination_id)
    )


def destination_secret(vault: Vault, row: Mapping[str, Any]) -> str:
    """The destination's signing secret in clear, for its tenant."""
    return vault.decrypt(row["secret"], context=destination_secret_context(row["id"]))
