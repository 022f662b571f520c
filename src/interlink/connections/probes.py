"""Store access for health: probe outcomes and connection counts per provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.tables import connections
from interlink.store.types import utcnow

__all__ = ["count_by_provider", "probe_batch", "probe_counts", "record_probe"]


async def count_by_provider(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """Connections per provider and status, across tenants."""
    query = select(connections.c.provider, connections.c.status, func.count().label("n")).group_by(
        connections.c.provider, connections.c.status
    )
    found: dict[str, dict[str, int]] = {}
    for provider, status, count in (await conn.execute(query)).all():
        found.setdefault(provider, {})[status] = int(count)
    return found


async def probe_counts(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """Active connections per provider by the outcome of their last health probe."""
    query = (
        select(connections.c.provider, connections.c.health_status, func.count())
        .where(connections.c.status == "active")
        .group_by(connections.c.provider, connections.c.health_status)
    )
    found: dict[str, dict[str, int]] = {}
    for provider, health, count in (await conn.execute(query)).all():
        found.setdefault(provider, {})[health or "unchecked"] = int(count)
    return found


async def probe_batch(conn: AsyncConnection, checked_before: datetime, limit: int) -> list[str]:
    """Active connections whose last probe is older than ``checked_before`` (never first)."""
    query = (
        select(connections.c.id)
        .where(
            connections.c.status.in_(("active", "error")),
            or_(
                connections.c.health_checked_at.is_(None),
                connections.c.health_checked_at < checked_before,
            ),
        )
        .order_by(connections.c.health_checked_at.is_not(None), connections.c.health_checked_at)
        .limit(limit)
    )
    return [row[0] for row in (await conn.execute(query)).all()]


async def record_probe(
    conn: AsyncConnection, connection_id: str, healthy: bool, detail: str
) -> None:
    await conn.execute(
        update(connections)
        .where(connections.c.id == connection_id)
        .values(
            health_status="healthy" if healthy else "unhealthy",
            health_detail=detail[:500],
            health_checked_at=utcnow(),
        )
    )
