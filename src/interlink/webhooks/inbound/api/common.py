"""Helpers shared by the inbound routers: path parameters and tenant-scoped lookups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.api.errors import Problem
from interlink.webhooks.inbound import sources as service

__all__ = ["DestinationIdPath", "EventIdPath", "SourceIdPath", "require_source"]

_ID = r"^[A-Za-z0-9_]{1,60}$"
SourceIdPath = Annotated[str, Path(pattern=_ID, description="Source id (src_...)")]
EventIdPath = Annotated[str, Path(pattern=_ID, description="Received event id (evt_...)")]
DestinationIdPath = Annotated[str, Path(pattern=_ID, description="Destination id (dst_...)")]


async def require_source(conn: AsyncConnection, tenant_id: str, source_id: str) -> dict[str, Any]:
    """The tenant's source, or 404 (also for another tenant's)."""
    row = await service.get_source(conn, tenant_id, source_id)
    if row is None:
        raise Problem.not_found("source", source_id)
    return row
