"""The event-type catalog of this deployment: names, descriptions, payload schemas, archiving."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.store.types import utcnow
from interlink.webhooks.outbound.schemas import (
    PayloadValidator,
    SchemaError,
    SchemaViolation,
    compile_schema,
)
from interlink.webhooks.outbound.tables import outbound_event_types

__all__ = [
    "EventTypeError",
    "PayloadRejected",
    "check_payloads",
    "create_event_type",
    "delete_event_type",
    "get_event_type",
    "list_event_types",
    "public_event_type",
    "update_event_type",
]


class EventTypeError(ValueError):
    """An event-type definition is refused (bad schema); the message names the place."""


class PayloadRejected(ValueError):
    """A message's payload breaks its event type's schema, or the type is archived."""

    def __init__(self, message: str, violations: list[SchemaViolation] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


def _check_schema(schema: dict[str, Any] | None) -> None:
    if schema is None:
        return
    try:
        compile_schema(schema)
    except SchemaError as error:
        raise EventTypeError(f"schema: {error}") from error


async def create_event_type(conn: AsyncConnection, fields: dict[str, Any]) -> dict[str, Any]:
    """Add a type to the catalog (a duplicate name surfaces as StoreRejected → 409)."""
    _check_schema(fields.get("schema"))
    now = utcnow()
    row = {"description": "", "schema": None, "archived": False, **fields}
    await conn.execute(outbound_event_types.insert().values(**row, created_at=now, updated_at=now))
    found = await get_event_type(conn, fields["name"])
    assert found is not None
    return found


async def get_event_type(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    query = select(outbound_event_types).where(outbound_event_types.c.name == name)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_event_types(
    conn: AsyncConnection, *, after: str | None, limit: int, include_archived: bool
) -> list[dict[str, Any]]:
    query = select(outbound_event_types).order_by(outbound_event_types.c.name).limit(limit)
    if after:
        query = query.where(outbound_event_types.c.name > after)
    if not include_archived:
        query = query.where(outbound_event_types.c.archived.is_(False))
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def update_event_type(
    conn: AsyncConnection, name: str, changes: dict[str, Any]
) -> dict[str, Any] | None:
    if "schema" in changes:
        _check_schema(changes["schema"])
    result = await conn.execute(
        update(outbound_event_types)
        .where(outbound_event_types.c.name == name)
        .values(**changes, updated_at=utcnow())
    )
    return await get_event_type(conn, name) if result.rowcount else None


async def delete_event_type(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(
        delete(outbound_event_types).where(outbound_event_types.c.name == name)
    )
    return bool(result.rowcount)


def public_event_type(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("name", "description", "schema", "archived", "created_at")}


# Built once (a statement built per call costs about as much again as running it).
_CATALOG = select(
    outbound_event_types.c.name,
    outbound_event_types.c.schema,
    outbound_event_types.c.archived,
    outbound_event_types.c.updated_at,
).where(outbound_event_types.c.name.in_(bindparam("names", expanding=True)))


async def check_payloads(
    conn: AsyncConnection,
    cache: dict[str, Any],
    items: Sequence[tuple[str, Any]],
) -> list[PayloadRejected | None]:
    """Check each ``(event_type, payload)`` against its type's schema, one query for all.

    Types missing from the catalog are accepted without a schema; archived types are refused.
    Compiled validators are cached by name and last change.
    """
    names = sorted({name for name, _ in items})
    catalog = {row.name: row for row in await conn.execute(_CATALOG, {"names": names})}
    verdicts: list[PayloadRejected | None] = []
    for name, payload in items:
        row = catalog.get(name)
        if row is None or (row.schema is None and not row.archived):
            verdicts.append(None)
        elif row.archived:
            verdicts.append(PayloadRejected(f"event_type: {name} is archived"))
        else:
            verdicts.append(_violations(cache, row, payload))
    return verdicts


def _violations(cache: dict[str, Any], row: Any, payload: Any) -> PayloadRejected | None:
    cached = cache.get(row.name)
    if cached is None or cached[0] != row.updated_at:
        cached = cache[row.name] = (row.updated_at, compile_schema(row.schema))
    validator: PayloadValidator = cached[1]
    violations = validator.errors(payload)
    if not violations:
        return None
    first = violations[0]
    where = f"payload.{first.path}" if first.path else "payload"
    return PayloadRejected(f"{where}: {first.message}", violations)
