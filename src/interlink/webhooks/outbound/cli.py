"""``interlink webhooks``: follow delivery attempts live, resend a message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy import select

from interlink.cli.main import CLIError
from interlink.settings import load_settings
from interlink.webhooks.outbound.attempts import AttemptFilters, list_attempts, resend
from interlink.webhooks.outbound.tables import (
    outbound_deliveries,
    outbound_endpoints,
    outbound_messages,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from interlink.runtime import Runtime

__all__ = ["cli"]

T = TypeVar("T")
cli = typer.Typer(help="Outbound webhooks: follow attempts, resend messages.", no_args_is_help=True)


def _run(action: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        from interlink.runtime import Runtime
        from interlink.store import migrate

        runtime = Runtime(load_settings())
        try:
            if runtime.db.is_postgres and await migrate.pending(runtime.db):
                raise CLIError("the database schema is not up to date: run `interlink migrate`")
            await runtime.start(migrate_schema=not runtime.db.is_postgres)
            return await action(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def _line(row: dict[str, Any]) -> str:
    outcome = str(row["response_status_code"] or row["error_class"] or "-")
    return (
        f"{row['created_at']:%Y-%m-%d %H:%M:%S}  {row['id']}  {row['status']:<9} {outcome:<18} "
        f"{row['duration_ms']:>8.1f} ms  {row['message_id']}  {row['endpoint_id']}  "
        f"{row['event_type']}"
    )


async def _owner_of(conn: AsyncConnection, endpoint_id: str) -> str | None:
    """The tenant of an endpoint, or None when there is no such endpoint."""
    owner: str | None = await conn.scalar(
        select(outbound_endpoints.c.tenant_id).where(outbound_endpoints.c.id == endpoint_id)
    )
    return owner


@cli.command("tail")
def tail(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's attempts")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's attempts")] = None,
    status: Annotated[str | None, typer.Option(help="succeeded or failed")] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls")] = 0.5,
    once: Annotated[bool, typer.Option(help="Print what is there and stop")] = False,
    last: Annotated[int, typer.Option(min=0, max=1000, help="Recent attempts shown first")] = 10,
) -> None:
    """Print delivery attempts as they happen (the most recent few first)."""
    if status not in (None, "succeeded", "failed"):
        raise CLIError("--status must be succeeded or failed")
    filters = AttemptFilters(endpoint_id=endpoint, status=status)

    async def action(runtime: Runtime) -> None:
        from interlink.tenants.service import get_tenant
        from interlink.webhooks.outbound.tables import outbound_attempts

        async with runtime.db.transaction() as conn:
            # A mistyped id would otherwise follow nothing, silently, for ever.
            if tenant is not None and await get_tenant(conn, tenant) is None:
                raise CLIError(f"there is no tenant {tenant}")
            if endpoint is not None:
                owner = await _owner_of(conn, endpoint)
                if owner is None or tenant not in (None, owner):
                    where = f" of {tenant}" if tenant else ""
                    raise CLIError(f"there is no endpoint {endpoint}{where}")
            query = select(outbound_attempts.c.id).order_by(outbound_attempts.c.id.desc())
            recent = (await conn.execute(query.limit(last + 1))).scalars().all()
        after = recent[-1] if len(recent) > last else None
        while True:
            async with runtime.db.transaction() as conn:
                rows = await list_attempts(conn, tenant, filters, after=after, limit=500)
            for row in rows:
                typer.echo(_line(row))
            if rows:
                after = rows[-1]["id"]
            if once and len(rows) < 500:
                return
            if len(rows) < 500:
                await asyncio.sleep(interval)

    try:
        _run(action)
    except KeyboardInterrupt:
        return


@cli.command("resend")
def resend_command(
    message_id: Annotated[str, typer.Argument(help="The message id (msg_...)")],
    endpoint: Annotated[
        str | None, typer.Option(help="Only to this endpoint (default: every one it went to)")
    ] = None,
) -> None:
    """Deliver a message again, with a fresh retry schedule."""

    async def action(runtime: Runtime) -> None:
        from interlink.audit import record_action

        async with runtime.db.transaction() as conn:
            query = select(outbound_messages).where(outbound_messages.c.id == message_id)
            message = (await conn.execute(query)).mappings().first()
            if message is None:
                raise CLIError(f"there is no message {message_id}")
            if message["payload_purged_at"] is not None:
                raise CLIError(f"the payload of {message_id} was purged; it cannot be resent")
            targets = (
                [endpoint]
                if endpoint
                else list(
                    (
                        await conn.execute(
                            select(outbound_deliveries.c.endpoint_id).where(
                                outbound_deliveries.c.message_id == message_id
                            )
                        )
                    ).scalars()
                )
            )
            for endpoint_id in targets:
                if await _owner_of(conn, endpoint_id) != message["tenant_id"]:
                    raise CLIError(f"{endpoint_id} is not an endpoint of {message['tenant_id']}")
                await resend(
                    conn, runtime.queue, tenant_id=message["tenant_id"], message=dict(message),
                    endpoint_id=endpoint_id,
                )  # fmt: skip
                await record_action(
                    conn, "cli", "message.resent", tenant_id=message["tenant_id"],
                    target=message_id, details={"endpoint_id": endpoint_id},
                )  # fmt: skip
        typer.echo(f"resending {message_id} to {', '.join(targets) or 'no endpoint'}")

    _run(action)
