"""Endpoints: a tenant's customers' URLs, subscribed to event types. The service functions.

Routes, the CLI and the delivery worker call these; none holds SQL of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.store.types import utcnow
from interlink.vault import Vault
from interlink.webhooks.outbound import endpoint_secrets as secrets
from interlink.webhooks.outbound.endpoint_checks import (
    EndpointConfigError,
    check_auth,
    check_endpoint_fields,
    check_url,
)
from interlink.webhooks.outbound.signing import generate_secret
from interlink.webhooks.outbound.tables import outbound_endpoints

__all__ = [
    "EndpointConfigError",
    "check_auth",
    "check_endpoint_fields",
    "check_url",
    "create_endpoint",
    "delete_endpoint",
    "get_endpoint",
    "list_endpoints",
    "public_endpoint",
    "rotate_secret",
    "update_endpoint",
]


def _auth_type(auth: dict[str, Any] | None) -> str | None:
    return None if auth is None else str(auth["type"])


async def create_endpoint(
    conn: AsyncConnection,
    vault: Vault,
    *,
    tenant_id: str,
    fields: dict[str, Any],
    secret: str | None,
    asymmetric: bool,
    auth: dict[str, Any] | None,
    default_timeout: float,
) -> tuple[dict[str, Any], str]:
    """Store a new endpoint; returns its row and its signing secret (shown once at creation)."""
    check_endpoint_fields(fields)
    endpoint_id = new_id("ep")
    secret = secret or generate_secret()
    try:
        signing = secrets.new_signing_columns(vault, endpoint_id, secret, asymmetric=asymmetric)
    except ValueError as error:
        raise EndpointConfigError(f"secret: {error}") from error
    now = utcnow()
    disabled = bool(fields.pop("disabled", False))
    row: dict[str, Any] = {
        "id": endpoint_id,
        "tenant_id": tenant_id,
        "description": "",
        "metadata": {},
        "headers": {},
        **fields,
        **signing,
        "timeout_seconds": fields.get("timeout_seconds") or default_timeout,
        "auth": secrets.encrypt_auth(vault, endpoint_id, auth),
        "auth_type": _auth_type(auth),
        "disabled": disabled,
        "disabled_reason": "disabled by the user" if disabled else None,
        "consecutive_failures": 0,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(outbound_endpoints.insert().values(**row))
    return await _reload(conn, endpoint_id), secret


async def _reload(conn: AsyncConnection, endpoint_id: str) -> dict[str, Any]:
    query = select(outbound_endpoints).where(outbound_endpoints.c.id == endpoint_id)
    return dict((await conn.execute(query)).mappings().one())


async def get_endpoint(
    conn: AsyncConnection, tenant_id: str, endpoint_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    """The tenant's endpoint, or None (also for another tenant's)."""
    query = select(outbound_endpoints).where(
        outbound_endpoints.c.id == endpoint_id, outbound_endpoints.c.tenant_id == tenant_id
    )
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_endpoints(
    conn: AsyncConnection, tenant_id: str, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(outbound_endpoints)
        .where(outbound_endpoints.c.tenant_id == tenant_id)
        .order_by(outbound_endpoints.c.id)
        .limit(limit)
    )
    if after:
        query = query.where(outbound_endpoints.c.id > after)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def update_endpoint(
    conn: AsyncConnection,
    vault: Vault,
    current: dict[str, Any],
    changes: dict[str, Any],
    *,
    auth: dict[str, Any] | bool | None = False,
) -> dict[str, Any]:
    """Apply ``changes``; ``auth`` False leaves authentication as it is, None removes it.

    Re-enabling an endpoint clears its failure counters so that deliveries flow at once.
    """
    check_endpoint_fields(changes)
    values = dict(changes)
    if auth is not False:
        auth_value = auth if isinstance(auth, dict) else None
        values["auth"] = secrets.encrypt_auth(vault, current["id"], auth_value)
        values["auth_type"] = _auth_type(auth_value)
    if "disabled" in values:
        if values["disabled"] and not current["disabled"]:
            values["disabled_reason"] = "disabled by the user"
        elif not values["disabled"] and current["disabled"]:
            values.update(
                disabled_reason=None,
                consecutive_failures=0,
                first_failure_at=None,
                next_attempt_not_before=None,
            )
    values.update(version=current["version"] + 1, updated_at=utcnow())
    await conn.execute(
        update(outbound_endpoints).where(outbound_endpoints.c.id == current["id"]).values(**values)
    )
    return await _reload(conn, current["id"])


async def delete_endpoint(conn: AsyncConnection, tenant_id: str, endpoint_id: str) -> bool:
    result = await conn.execute(
        delete(outbound_endpoints).where(
            outbound_endpoints.c.id == endpoint_id, outbound_endpoints.c.tenant_id == tenant_id
        )
    )
    return bool(result.rowcount)


async def rotate_secret(
    conn: AsyncConnection,
    vault: Vault,
    current: dict[str, Any],
    new_secret: str | None,
    grace: timedelta,
) -> tuple[dict[str, Any], str]:
    """Make a new secret current; the old one keeps signing for ``grace`` (at most 7 days)."""
    if grace > secrets.MAX_GRACE:
        raise EndpointConfigError("grace_seconds: at most 7 days (604800)")
    new_secret = new_secret or generate_secret()
    now = utcnow()
    try:
        columns = secrets.rotation_columns(vault, current, new_secret, grace, now)
    except ValueError as error:
        raise EndpointConfigError(f"secret: {error}") from error
    await conn.execute(
        update(outbound_endpoints)
        .where(outbound_endpoints.c.id == current["id"])
        .values(**columns, version=current["version"] + 1, updated_at=now)
    )
    return await _reload(conn, current["id"]), new_secret


def public_endpoint(vault: Vault, row: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as the API shows it: no secret, no authentication values."""
    expires: datetime | None = row["previous_secret_expires_at"]
    return {
        "id": row["id"],
        "tenant_id": row["tenant_id"],
        "url": row["url"],
        "description": row["description"],
        "event_types": row["event_types"],
        "filter": row["filter"],
        "metadata": row["metadata"],
        "headers": row["headers"],
        "rate_limit": row["rate_limit"],
        "timeout_seconds": row["timeout_seconds"],
        "retry_schedule": row["retry_schedule"],
        "auth_type": row["auth_type"],
        "public_key": secrets.public_key(vault, row),
        "disabled": row["disabled"],
        "disabled_reason": row["disabled_reason"],
        "health": {
            "consecutive_failures": row["consecutive_failures"],
            "first_failure_at": row["first_failure_at"],
            "last_success_at": row["last_success_at"],
            "next_attempt_not_before": row["next_attempt_not_before"],
        },
        "previous_secret_expires_at": expires if expires and expires > utcnow() else None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
