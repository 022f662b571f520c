"""Tenant and API key operations, shared by the HTTP routes and the CLI."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.audit import record_action
from interlink.auth.principal import Principal
from interlink.auth.tokens import hash_token, new_admin_token, new_api_key
from interlink.ids import new_id
from interlink.store.schema import api_keys, meta, tenants
from interlink.store.types import utcnow

__all__ = [
    "ApiKeyCreated",
    "authenticate_token",
    "create_api_key",
    "create_tenant",
    "ensure_admin_token",
    "get_tenant",
    "list_api_keys",
    "list_tenants",
    "revoke_api_key",
]

_ADMIN_HASH = "admin_token_sha256"


async def create_tenant(
    conn: AsyncConnection,
    name: str,
    principal: Principal | str,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    now = utcnow()
    tenant_id = new_id("ten")
    row: dict[str, Any] = {
        "id": tenant_id,
        "name": name,
        "metadata": dict(metadata or {}),
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(tenants.insert().values(**row))
    await record_action(conn, principal, "tenant.created", tenant_id=tenant_id, target=tenant_id)
    return row


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).mappings().first()
    return dict(row) if row else None


async def list_tenants(
    conn: AsyncConnection, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(tenants).order_by(tenants.c.id).limit(limit)
    if after:
        query = query.where(tenants.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


@dataclass(frozen=True)
class ApiKeyCreated:
    record: dict[str, Any]
    key: str


async def create_api_key(
    conn: AsyncConnection,
    principal: Principal | str,
    *,
    tenant_id: str | None,
    name: str = "",
) -> ApiKeyCreated:
    """A new key, admin-scoped when ``tenant_id`` is None; the plaintext is returned only here."""
    key = new_api_key()
    key_id = new_id("key")
    record: dict[str, Any] = {
        "id": key_id,
        "tenant_id": tenant_id,
        "scope": "tenant" if tenant_id else "admin",
        "name": name,
        "prefix": key[:12],
        "key_hash": hash_token(key),
        "created_at": utcnow(),
        "last_used_at": None,
        "revoked_at": None,
    }
    await conn.execute(api_keys.insert().values(**record))
    await record_action(conn, principal, "api_key.created", tenant_id=tenant_id, target=key_id)
    return ApiKeyCreated(record=record, key=key)


async def list_api_keys(
    conn: AsyncConnection, *, tenant_id: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(api_keys).order_by(api_keys.c.id).limit(limit)
    query = query.where(
        api_keys.c.tenant_id == tenant_id if tenant_id else api_keys.c.tenant_id.is_(None)
    )
    if after:
        query = query.where(api_keys.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def revoke_api_key(
    conn: AsyncConnection, principal: Principal, *, key_id: str, tenant_id: str | None
) -> bool:
    condition = api_keys.c.id == key_id
    condition &= api_keys.c.tenant_id == tenant_id if tenant_id else api_keys.c.tenant_id.is_(None)
    result = await conn.execute(
        update(api_keys)
        .where(condition, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount:
        await record_action(conn, principal, "api_key.revoked", tenant_id=tenant_id, target=key_id)
    return bool(result.rowcount)


async def ensure_admin_token(conn: AsyncConnection, configured: str | None) -> str | None:
    """Make sure an admin token exists; returns a newly generated token to print once, or None.

    A configured ``INTERLINK_ADMIN_TOKEN`` is always accepted and is never stored; without one,
    the first start generates a token and stores its digest.
    """
    existing = (
        await conn.execute(select(meta.c.value).where(meta.c.key == _ADMIN_HASH))
    ).scalar_one_or_none()
    if existing is not None or configured:
        return None
    token = new_admin_token()
    await conn.execute(
        meta.insert().values(key=_ADMIN_HASH, value=hash_token(token), updated_at=utcnow())
    )
    await record_action(conn, "system", "admin_token.generated")
    return token


async def reset_admin_token(conn: AsyncConnection) -> str:
    """Replace the stored admin token (the old one stops working) and return the new one."""
    token = new_admin_token()
    now = utcnow()
    result = await conn.execute(
        update(meta)
        .where(meta.c.key == _ADMIN_HASH)
        .values(value=hash_token(token), updated_at=now)
    )
    if not result.rowcount:
        await conn.execute(
            meta.insert().values(key=_ADMIN_HASH, value=hash_token(token), updated_at=now)
        )
    await record_action(conn, "cli", "admin_token.reset")
    return token


async def authenticate_token(
    conn: AsyncConnection, token: str, *, configured_admin: str | None
) -> Principal | None:
    """The principal a bearer token stands for, or None when it is unknown or revoked."""
    if configured_admin and hmac.compare_digest(token.encode(), configured_admin.encode()):
        return Principal(scope="admin", actor="admin-token")
    digest = hash_token(token)
    stored = (
        await conn.execute(select(meta.c.value).where(meta.c.key == _ADMIN_HASH))
    ).scalar_one_or_none()
    if stored is not None and hmac.compare_digest(stored, digest):
        return Principal(scope="admin", actor="admin-token")
    row = (
        await conn.execute(
            select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.scope).where(
                api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(scope=row.scope, actor=row.id, tenant_id=row.tenant_id)
