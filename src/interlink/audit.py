"""The audit log: who did what to which resource, written in the same transaction as the act."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.auth.principal import Principal
from interlink.ids import new_id
from interlink.store.schema import audit_log
from interlink.store.types import utcnow

__all__ = ["list_actions", "record_action"]


async def record_action(
    conn: AsyncConnection,
    principal: Principal | str,
    action: str,
    *,
    tenant_id: str | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Append ``action`` (``tenant.created``, ``api_key.revoked``, ...) to the audit log."""
    actor = principal if isinstance(principal, str) else principal.actor
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    audit_id = new_id("aud")
    await conn.execute(
        audit_log.insert().values(
            id=audit_id,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            target=target,
            details=dict(details or {}),
            request_id=request_id,
            created_at=utcnow(),
        )
    )
    return audit_id


async def list_actions(
    conn: AsyncConnection,
    *,
    tenant_id: str | None,
    after: str | None,
    limit: int,
    action: str | None = None,
) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.id).limit(limit)
    if tenant_id is not None:
        query = query.where(audit_log.c.tenant_id == tenant_id)
    if after:
        query = query.where(audit_log.c.id > after)
    if action:
        query = query.where(audit_log.c.action == action)
    return [dict(row) for row in (await conn.execute(query)).mappings()]
