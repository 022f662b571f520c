"""The refresh lease on a connection row: one refresher per connection across processes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.tables import connections
from interlink.store.types import utcnow

__all__ = ["release_refresh_lease", "take_refresh_lease"]


async def take_refresh_lease(
    conn: AsyncConnection, connection_id: str, owner: str, version: int, seconds: float
) -> bool:
    """Claim the connection's refresh lease if it is free and the tokens are still ``version``.

    One conditional UPDATE: on PostgreSQL concurrent claimers serialise on the row lock and
    the loser sees the winner's lease; on SQLite the write lock does the same.
    """
    now = utcnow()
    result = await conn.execute(
        update(connections)
        .where(
            connections.c.id == connection_id,
            connections.c.credentials_version == version,
            connections.c.status.in_(("active", "refreshing", "error")),
            or_(
                connections.c.refresh_lease_until.is_(None),
                connections.c.refresh_lease_until < now,
            ),
        )
        .values(
            refresh_lease_owner=owner,
            refresh_lease_until=now + timedelta(seconds=seconds),
            status="refreshing",
            updated_at=now,
        )
    )
    return bool(result.rowcount)


async def release_refresh_lease(
    conn: AsyncConnection, connection_id: str, owner: str, *, failures: int, reason: str
) -> None:
    """Give the lease back after a failed refresh that may succeed later."""
    await conn.execute(
        update(connections)
        .where(connections.c.id == connection_id, connections.c.refresh_lease_owner == owner)
        .values(
            refresh_lease_owner=None,
            refresh_lease_until=None,
            status="error",
            status_reason=reason[:500],
            refresh_failures=failures,
            updated_at=utcnow(),
        )
    )
