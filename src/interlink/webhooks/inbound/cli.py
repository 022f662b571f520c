"""``interlink sources``: look at a source's log, follow it, replay it, fire samples at it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import aiohttp
import typer

from interlink.cli.main import CLIError
from interlink.settings import load_settings, parse_duration
from interlink.webhooks.inbound import events_log
from interlink.webhooks.inbound import sources as service
from interlink.webhooks.inbound.fire import PROVIDERS, signed_sample

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["cli", "parse_moment"]

T = TypeVar("T")
cli = typer.Typer(
    help="Inbound webhook sources: log, replay, sample webhooks.", no_args_is_help=True
)


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """``2024-05-01T12:00:00Z``, ``2024-05-01`` or a duration ago (``90s``, ``15m``, ``2h``)."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    except OverflowError:  # 99999999999d: before the first year a date can hold
        raise CLIError(f"{text!r} reaches back further than a date can go") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        message = f"{text!r} is neither a time (2024-05-01T12:00:00Z) nor a duration (2h)"
        raise CLIError(message) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


async def _source(runtime: Runtime, source_id: str) -> dict[str, Any]:
    async with runtime.db.transaction() as conn:
        row = await service.find_source(conn, source_id)
    if row is None:
        raise CLIError(f"there is no source {source_id}")
    return row


def _line(row: dict[str, Any]) -> str:
    seen = f"x{row['seen_count']}" if row["seen_count"] > 1 else ""
    check = row["failed_check"] or ""
    return (
        f"{row['received_at']:%Y-%m-%d %H:%M:%S}  {row['id']}  {row['status']:<8} {seen:<4} "
        f"{(row['event_type'] or '-'):<32} {row['processing_status']:<10} {check}"
    ).rstrip()


@cli.command("events")
def events(
    source_id: Annotated[str, typer.Argument(help="The source id (src_...)")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events")
    ] = False,
    status: Annotated[str | None, typer.Option(help="accepted, duplicate or rejected")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Events shown first")] = 20,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls")] = 1.0,
) -> None:
    """Print a source's latest received events (oldest first), and with --follow new ones."""
    if status not in (None, "accepted", "duplicate", "rejected"):
        raise CLIError("--status must be accepted, duplicate or rejected")
    filters = events_log.EventFilters(status=status)

    async def action(runtime: Runtime) -> None:
        source = await _source(runtime, source_id)
        tenant = source["tenant_id"]
        async with runtime.db.transaction() as conn:
            rows = await events_log.list_events(
                conn, tenant, source_id, filters, after=None, limit=limit
            )
        for row in reversed(rows):
            typer.echo(_line(row))
        last = rows[0]["id"] if rows else None
        while follow:
            await asyncio.sleep(interval)
            async with runtime.db.transaction() as conn:
                fresh = (
                    await events_log.list_events(
                        conn, tenant, source_id, filters, after=last, limit=500, newest_first=False
                    )
                    if last
                    else await events_log.list_events(
                        conn, tenant, source_id, filters, after=None, limit=500
                    )
                )
            if not last:
                fresh.reverse()
            for row in fresh:
                typer.echo(_line(row))
            if fresh:
                last = fresh[-1]["id"]

    try:
        _run(action)
    except KeyboardInterrupt:
        return


@cli.command("replay")
def replay(
    source_id: Annotated[str, typer.Argument(help="The source id (src_...)")],
    since: Annotated[str, typer.Option(help="From this time (ISO 8601) or duration ago (2h)")],
    until: Annotated[str | None, typer.Option(help="Up to this time (exclusive)")] = None,
) -> None:
    """Process again every accepted event received in a time range."""
    start = parse_moment(since)
    end = parse_moment(until) if until else None
    if end is not None and end <= start:
        raise CLIError("--until must be after --since")

    async def action(runtime: Runtime) -> None:
        from interlink.audit import record_action

        source = await _source(runtime, source_id)
        async with runtime.db.transaction() as conn:
            count, more = await events_log.replay_range(
                conn, runtime.queue, source["tenant_id"], source_id, start, end
            )
            await record_action(
                conn,
                "cli",
                "source.replayed",
                tenant_id=source["tenant_id"],
                target=source_id,
                details={"since": start.isoformat(), "replayed": count},
            )
        suffix = " (more remain: run again from the last one)" if more else ""
        typer.echo(f"replaying {count} events of {source_id}{suffix}")

    _run(action)


@cli.command("fire")
def fire(
    source_id: Annotated[str, typer.Argument(help="The source id (src_...)")],
    provider: Annotated[str, typer.Option(help=f"One of {', '.join(PROVIDERS)}")],
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many webhooks")] = 1,
    url: Annotated[str | None, typer.Option(help="Post here instead of the ingest URL")] = None,
) -> None:
    """Fire realistic signed sample webhooks of one provider (--provider) at a source."""
    if provider not in PROVIDERS:
        raise CLIError(f"--provider must be one of {', '.join(PROVIDERS)}")

    async def action(runtime: Runtime) -> None:
        source = await _source(runtime, source_id)
        if source["provider"] != provider:
            raise CLIError(f"{source_id} is a {source['provider']} source, not {provider}")
        secret = service.decrypt_secret(runtime.vault, source)
        signed_url = service.ingest_url(runtime.settings.effective_public_url, source_id)
        target = url or signed_url
        counts: dict[str, int] = {}
        async with aiohttp.ClientSession() as session:
            for number in range(1, count + 1):
                request = signed_sample(provider, secret, signed_url, source["options"] or {})
                try:
                    async with session.post(
                        target,
                        data=request.body,
                        headers=request.headers,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as response:
                        text = (await response.text())[:200]
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    reason = str(error) or type(error).__name__
                    raise CLIError(f"could not reach {target}: {reason}") from None
                counts[str(status)] = counts.get(str(status), 0) + 1
                if count <= 20:
                    typer.echo(f"{number}/{count} {status} {text}")
        summary = ", ".join(f"{n}x {code}" for code, n in sorted(counts.items()))
        typer.echo(f"fired {count} {provider} webhooks at {target}: {summary}")

    _run(action)
