"""Store access for per-tenant OAuth apps: a tenant's client id and secret per provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections.tables import oauth_apps
from interlink.ids import new_id
from interlink.store.types import utcnow
from interlink.vault import Vault

__all__ = ["app_secret", "delete_app", "get_app", "list_apps", "public_app", "upsert_app"]


def _app_context(app_id: str) -> str:
    return f"connection_oauth_apps.client_secret:{app_id}"


def public_app(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "tenant_id", "provider", "client_id", "scopes", "created_at", "updated_at")
    return {key: row[key] for key in keys}


def app_secret(vault: Vault, row: Mapping[str, Any]) -> str:
    return vault.decrypt(row["client_secret"], context=_app_context(row["id"]))


async def get_app(conn: AsyncConnection, tenant_id: str, provider: str) -> dict[str, Any] | None:
    query = select(oauth_apps).where(
        oauth_apps.c.tenant_id == tenant_id, oauth_apps.c.provider == provider
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def upsert_app(
    conn: AsyncConnection,
    vault: Vault,
    *,
    tenant_id: str,
    provider: str,
    client_id: str,
    client_secret: str,
    scopes: list[str] | None,
) -> tuple[dict[str, Any], bool]:
    """Create or replace the tenant's OAuth app for ``provider``; True when created."""
    now = utcnow()
    existing = await get_app(conn, tenant_id, provider)
    app_id = existing["id"] if existing else new_id("oap")
    values = {
        "client_id": client_id,
        "client_secret": vault.encrypt(client_secret, context=_app_context(app_id)),
        "scopes": scopes,
        "updated_at": now,
    }
    if existing:
        await conn.execute(update(oauth_apps).where(oauth_apps.c.id == app_id).values(**values))
        return {**existing, **values}, False
    row = {"id": app_id, "tenant_id": tenant_id, "provider": provider, "created_at": now, **values}
    await conn.execute(oauth_apps.insert().values(**row))
    return row, True


async def list_apps(
    conn: AsyncConnection, tenant_id: str, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(oauth_apps)
        .where(oauth_apps.c.tenant_id == tenant_id)
        .order_by(oauth_apps.c.id)
        .limit(limit)
    )
    if after:
        query = query.where(oauth_apps.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def delete_app(conn: AsyncConnection, tenant_id: str, provider: str) -> bool:
    result = await conn.execute(
        delete(oauth_apps).where(
            oauth_apps.c.tenant_id == tenant_id, oauth_apps.c.provider == provider
        )
    )
    return bool(result.rowcount)
