"""``interlink``: serve, worker, migrate, tenants, api-keys, keys, jobs, version.

Every failure the user can act on ends in one readable line on stderr and exit code 1 or 2,
never a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer

from interlink import __version__
from interlink.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

app = typer.Typer(
    name="interlink",
    help="Interlink: a self-hosted integration hub.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="Master keys of the vault.", no_args_is_help=True)
api_keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
jobs_app = typer.Typer(help="The work queue.", no_args_is_help=True)
admin_token_app = typer.Typer(help="The bootstrap admin token.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(admin_token_app, name="admin-token")


class CLIError(Exception):
    """A failure to report as one line."""


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


async def _open_runtime(settings: Settings, *, migrate_sqlite: bool = True) -> Any:
    from interlink.observability.logging import configure_logging
    from interlink.runtime import Runtime
    from interlink.store import migrate

    configure_logging(settings.log_format, settings.log_level)
    runtime = Runtime(settings)
    try:
        if runtime.db.is_postgres or not migrate_sqlite:
            if await migrate.pending(runtime.db):
                raise CLIError("the database schema is not up to date: run `interlink migrate`")
            await runtime.start(migrate_schema=False)
        else:
            await runtime.start(migrate_schema=True)
    except BaseException:
        await runtime.close()
        raise
    return runtime


def _run_fast(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived service on uvloop when it is installed (it is with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coroutine)


def _settle_garbage_collector() -> None:
    """Keep the collector away from what start-up built, for the rest of a long-lived process.

    Imports and the app leave hundreds of thousands of objects that live as long as the process;
    without this every full collection walks them all again (pauses of tens of ms under load,
    and about a tenth of the CPU of a busy ingest path). Young objects are collected as usual,
    only less often: request handling allocates in bursts.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _with_runtime(settings: Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = await _open_runtime(settings)
        try:
            return await action(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"interlink {__version__}")


def _listen_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so a taken port is one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise CLIError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    if family in (socket.AF_INET, socket.AF_INET6):
        # Accepted connections inherit this: no 40 ms delayed-ACK stalls on split writes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; run workers apart")
    ] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a tenant wired to the built-in simulators")
    ] = False,
) -> None:
    """Run the API (and, unless --no-worker, the workers) in this process."""
    import uvicorn

    from interlink.api.app import create_app
    from interlink.api.server import server_config
    from interlink.tenants.service import ensure_admin_token

    settings = _settings(host=host, port=port, demo=demo or None)

    async def main() -> None:
        runtime = await _open_runtime(settings)
        try:
            async with runtime.db.transaction() as conn:
                configured = settings.admin_token
                token = await ensure_admin_token(
                    conn, configured.get_secret_value() if configured else None
                )
        except BaseException:
            await runtime.close()
            raise
        if token:
            typer.echo(
                "\nGenerated the admin token (shown once; store it now):\n\n"
                f"    {token}\n\n"
                f"Use it as: curl -H 'Authorization: Bearer {token}' "
                f"http://{settings.host}:{settings.port}/v1/tenants\n"
            )
        app = create_app(runtime, run_workers=not no_worker, migrate=False)
        config = server_config(app, host=settings.host, port=settings.port)
        server = uvicorn.Server(config)
        listener = _listen_socket(settings.host, settings.port)
        _settle_garbage_collector()
        typer.echo(
            f"Interlink {__version__} on http://{settings.host}:{settings.port}, "
            f"store: {runtime.db.dialect}"
        )
        await server.serve(sockets=[listener])

    _run_fast(main())


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Jobs in flight at once")] = None,
) -> None:
    """Run workers only (scale-out: any number of these beside `serve --no-worker`)."""
    settings = _settings()

    async def main() -> None:
        runtime = await _open_runtime(settings, migrate_sqlite=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        _settle_garbage_collector()
        typer.echo(f"Interlink worker on {runtime.db.dialect}")
        try:
            await runtime.run_workers(stop, concurrency)
        finally:
            await runtime.close()

    _run_fast(main())


@app.command()
def migrate() -> None:
    """Apply database migrations (serve applies them itself on SQLite)."""
    from interlink.observability.logging import configure_logging
    from interlink.store import migrate as migrations
    from interlink.store.database import Database

    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        db = Database(settings.database_url)
        try:
            await migrations.upgrade(db)
            heads = await migrations.current_heads(db)
        finally:
            await db.dispose()
        typer.echo(f"database is at {', '.join(sorted(heads))}")

    asyncio.run(main())


@tenants_app.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="Tenant name")]) -> None:
    """Create a tenant and print its id."""
    from interlink.tenants.service import create_tenant

    if not name.strip() or len(name) > 200 or "\x00" in name:
        raise CLIError("a tenant name is 1 to 200 characters")

    async def action(runtime: Any) -> None:
        async with runtime.db.transaction() as conn:
            row = await create_tenant(conn, name.strip(), "cli")
        typer.echo(row["id"])

    _with_runtime(_settings(), action)


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants."""
    from interlink.tenants.service import list_tenants

    async def action(runtime: Any) -> None:
        async with runtime.db.transaction() as conn:
            rows = await list_tenants(conn, after=None, limit=10_000)
        for row in rows:
            typer.echo(f"{row['id']}\t{row['name']}")

    _with_runtime(_settings(), action)


@api_keys_app.command("create")
def api_keys_create(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant id the key is for")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin-scoped key")] = False,
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
) -> None:
    """Create an API key and print it (shown only once)."""
    from interlink.tenants.service import create_api_key, get_tenant

    if bool(tenant) == admin:
        raise CLIError("give exactly one of --tenant ID or --admin")

    async def action(runtime: Any) -> None:
        async with runtime.db.transaction() as conn:
            if tenant and await get_tenant(conn, tenant) is None:
                raise CLIError(f"tenant {tenant} does not exist")
            created = await create_api_key(conn, "cli", tenant_id=tenant, name=name)
        typer.echo(created.key)

    _with_runtime(_settings(), action)


@admin_token_app.command("reset")
def admin_token_reset() -> None:
    """Replace the generated admin token and print the new one (the old one stops working)."""
    from interlink.tenants.service import reset_admin_token

    async def action(runtime: Any) -> None:
        async with runtime.db.transaction() as conn:
            token = await reset_admin_token(conn)
        typer.echo(token)

    _with_runtime(_settings(), action)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new master key for INTERLINK_MASTER_KEY."""
    from interlink.vault import generate_master_key

    typer.echo(generate_master_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the first key of INTERLINK_MASTER_KEY."""
    from interlink.vault.rotate import rotate_secrets

    async def action(runtime: Any) -> None:
        counts = await rotate_secrets(runtime.db, runtime.vault, runtime.encrypted_columns)
        total = sum(counts.values())
        for name, count in counts.items():
            typer.echo(f"{name}: {count} re-encrypted")
        typer.echo(f"{total} secrets now under key {runtime.vault.current_key_id}")

    _with_runtime(_settings(), action)


@keys_app.command("status")
def keys_status() -> None:
    """Show the loaded master key ids (the first encrypts)."""

    async def action(runtime: Any) -> None:
        for n, key_id in enumerate(runtime.vault.key_ids):
            typer.echo(f"{key_id}\t{'current' if n == 0 else 'decrypt only'}")

    _with_runtime(_settings(), action)


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str, typer.Option(help="queued, running, succeeded or dead")] = "dead",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """List jobs (the dead ones by default)."""
    if status not in ("queued", "running", "succeeded", "dead"):
        raise CLIError("--status is one of queued, running, succeeded, dead")

    async def action(runtime: Any) -> None:
        for row in await runtime.queue.list(status=status, limit=limit):
            error = (row["last_error"] or "").splitlines()[0][:100] if row["last_error"] else ""
            typer.echo(
                f"{row['id']}\t{row['kind']}\t{row['attempts']}/{row['max_attempts']}\t{error}"
            )

    _with_runtime(_settings(), action)


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[str, typer.Argument(help="A dead job's id")]) -> None:
    """Give a dead job a fresh set of attempts."""

    async def action(runtime: Any) -> None:
        if not await runtime.queue.retry_dead(job_id):
            raise CLIError(f"job {job_id} does not exist or is not dead")
        typer.echo(f"{job_id} queued again")

    _with_runtime(_settings(), action)


def _register_capabilities() -> None:
    from interlink.capabilities import load_capabilities

    for capability in load_capabilities():
        if capability.cli is not None:
            app.add_typer(capability.cli, name=capability.cli_name or capability.name)


def run() -> None:
    """Console entry point: run the app, turning known failures into one line."""
    from interlink.store.database import StoreUnavailable
    from interlink.vault.crypto import VaultError

    try:
        _register_capabilities()
        app()
    except (SettingsError, CLIError, StoreUnavailable, VaultError) as error:
        typer.echo(f"interlink: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as error:
        typer.echo(f"interlink: {error.strerror or error}", err=True)
        sys.exit(1)
