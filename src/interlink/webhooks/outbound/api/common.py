"""Helpers shared by the outbound routers: path parameters and tenant-scoped lookups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.api.errors import Problem
from interlink.webhooks.outbound import endpoints as endpoint_service
from interlink.webhooks.outbound import message_queries as message_service

__all__ = ["EndpointIdPath", "MessageIdPath", "require_endpoint", "require_message"]

_ID = r"^[A-Za-z0-9_]{1,60}$"
EndpointIdPath = Annotated[str, Path(pattern=_ID, description="Endpoint id (ep_...)")]
MessageIdPath = Annotated[str, Path(pattern=_ID, description="Message id (msg_...)")]


async def require_endpoint(
    conn: AsyncConnection, tenant_id: str, endpoint_id: str, *, lock: bool = False
) -> dict[str, Any]:
    """The tenant's endpoint, or 404 (also for another tenant's)."""
    row = await endpoint_service.get_endpoint(conn, tenant_id, endpoint_id, lock=lock)
    if row is None:
        raise Problem.not_found("endpoint", endpoint_id)
    return row


async def require_message(conn: AsyncConnection, tenant_id: str, message_id: str) -> dict[str, Any]:
    """The tenant's message, or 404."""
    row = await message_service.get_message(conn, tenant_id, message_id)
    if row is None:
        raise Problem.not_found("message", message_id)
    return row
