"""Store access for connections and per-tenant OAuth apps (all SQL of the capability).

Routes, the proxy, workers and the CLI call these functions; none of them holds SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.credentials import encrypt_credentials
from interlink.connections.tables import connections
from interlink.store.types import utcnow
from interlink.vault import Vault

__all__ = [
    "STATUSES",
    "delete_connection",
    "get_connection",
    "insert_connection",
    "list_connections",
    "public_connection",
    "set_status",
    "store_tokens",
]

STATUSES = ("active", "refreshing", "expired", "revoked", "error")
_PUBLIC = (
    "id", "tenant_id", "provider", "auth_type", "name", "status", "status_reason", "config",
    "metadata", "scopes", "expires_at", "last_refreshed_at", "health_status", "health_detail",
    "health_checked_at", "created_at", "updated_at",
)  # fmt: skip


def public_connection(row: Mapping[str, Any]) -> dict[str, Any]:
    """The connection as the API shows it: never its credentials."""
    return {key: row[key] for key in _PUBLIC}


async def insert_connection(
    conn: AsyncConnection,
    vault: Vault,
    *,
    connection_id: str,
    tenant_id: str,
    provider: str,
    auth_type: str,
    credentials: Mapping[str, Any],
    config: Mapping[str, Any],
    status: str = "active",
    status_reason: str | None = None,
    scopes: list[str] | None = None,
    expires_in: int | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    now = utcnow()
    row: dict[str, Any] = {
        "id": connection_id,
        "tenant_id": tenant_id,
        "provider": provider,
        "auth_type": auth_type,
        "name": name,
        "status": status,
        "status_reason": status_reason,
        "config": dict(config),
        "metadata": dict(metadata or {}),
        "scopes": list(scopes or []),
        "credentials": encrypt_credentials(vault, connection_id, credentials),
        "credentials_version": 1,
        "expires_at": now + timedelta(seconds=expires_in) if expires_in else None,
        "token_lifetime": expires_in,
        "refresh_failures": 0,
        "last_refreshed_at": now if expires_in else None,
        "health_status": None,
        "health_detail": None,
        "health_checked_at": None,
        "refresh_lease_owner": None,
        "refresh_lease_until": None,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(connections.insert().values(**row))
    return row


async def get_connection(
    conn: AsyncConnection, connection_id: str, tenant_id: str | None = None
) -> dict[str, Any] | None:
    """The connection row (scoped to ``tenant_id`` when given)."""
    query = select(connections).where(connections.c.id == connection_id)
    if tenant_id is not None:
        query = query.where(connections.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_connections(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    after: str | None,
    limit: int,
    provider: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    query = (
        select(connections)
        .where(connections.c.tenant_id == tenant_id)
        .order_by(connections.c.id)
        .limit(limit)
    )
    if after:
        query = query.where(connections.c.id > after)
    if provider:
        query = query.where(connections.c.provider == provider)
    if status:
        query = query.where(connections.c.status == status)
    return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def delete_connection(conn: AsyncConnection, tenant_id: str, connection_id: str) -> bool:
    result = await conn.execute(
        delete(connections).where(
            and_(connections.c.id == connection_id, connections.c.tenant_id == tenant_id)
        )
    )
    return bool(result.rowcount)


async def set_status(
    conn: AsyncConnection, connection_id: str, status: str, reason: str | None
) -> None:
    await conn.execute(
        update(connections)
        .where(connections.c.id == connection_id)
        .values(
            status=status,
            status_reason=reason[:500] if reason else None,
            refresh_lease_owner=None,
            refresh_lease_until=None,
            updated_at=utcnow(),
        )
    )


async def forget_credentials(
    conn: AsyncConnection, vault: Vault, tenant_id: str, connection_id: str, reason: str
) -> bool:
    """Replace the credentials with nothing and mark the connection ``revoked``."""
    result = await conn.execute(
        update(connections)
        .where(and_(connections.c.id == connection_id, connections.c.tenant_id == tenant_id))
        .values(
            credentials=encrypt_credentials(vault, connection_id, {}),
            credentials_version=connections.c.credentials_version + 1,
            expires_at=None,
            status="revoked",
            status_reason=reason[:500],
            refresh_lease_owner=None,
            refresh_lease_until=None,
            updated_at=utcnow(),
        )
    )
    return bool(result.rowcount)


async def store_tokens(
    conn: AsyncConnection,
    vault: Vault,
    connection_id: str,
    credentials: Mapping[str, Any],
    *,
    expires_in: int | None,
    config: Mapping[str, Any] | None = None,
    scopes: list[str] | None = None,
) -> None:
    """Store new tokens, bump the version, release the refresh lease and mark active."""
    now = utcnow()
    values: dict[str, Any] = {
        "credentials": encrypt_credentials(vault, connection_id, credentials),
        "credentials_version": connections.c.credentials_version + 1,
        "expires_at": now + timedelta(seconds=expires_in) if expires_in else None,
        "token_lifetime": expires_in,
        "last_refreshed_at": now,
        "status": "active",
        "status_reason": None,
        "refresh_failures": 0,
        "refresh_lease_owner": None,
        "refresh_lease_until": None,
        "updated_at": now,
    }
    if config is not None:
        values["config"] = dict(config)
    if scopes is not None:
        values["scopes"] = scopes
    await conn.execute(
        update(connections).where(connections.c.id == connection_id).values(**values)
    )
