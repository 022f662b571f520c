"""The connections capability: what it plugs into the core."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from interlink.capability import Capability, EncryptedColumn
from interlink.connections.api import connections as connections_api
from interlink.connections.api import oauth as oauth_api
from interlink.connections.api import providers as providers_api
from interlink.connections.api import proxy_route
from interlink.connections.cli import simulate
from interlink.connections.demo import start_demo, stop_demo
from interlink.connections.health import PROBE_JOB, probe_handler, schedule_probes
from interlink.connections.proxy import ProxyApp
from interlink.connections.proxy.app import PREFIX
from interlink.connections.signing import StateSigner
from interlink.connections.state import connections_state
from interlink.vault import load_master_keys

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlink.queue.worker import JobHandler
    from interlink.runtime import Runtime

__all__ = ["capability"]


async def _start(runtime: Runtime) -> None:
    state = connections_state(runtime)
    state.extras["signer"] = StateSigner(load_master_keys(runtime.settings))
    state.events.start()
    await schedule_probes(runtime)
    if runtime.settings.demo and runtime.serving:  # `interlink serve --demo`
        typer.echo((await start_demo(runtime)).describe())


async def _stop(runtime: Runtime) -> None:
    state = connections_state(runtime)
    await stop_demo(runtime)
    await state.events.stop()
    await state.egress.close()
    for close in state.closers:
        await close()


def _handlers(runtime: Runtime) -> Mapping[str, JobHandler]:
    return {PROBE_JOB: probe_handler(runtime)}


# `interlink simulate PROVIDER`: the group's own callback is the command.
cli = typer.Typer(help="Serve a provider simulator.")
cli.callback(invoke_without_command=True, context_settings={"allow_interspersed_args": True})(
    simulate
)

capability = Capability(
    name="connections",
    routers=(
        connections_api.router,
        oauth_api.router,
        providers_api.router,
        proxy_route.router,
    ),
    asgi_mounts={PREFIX: ProxyApp()},
    job_handlers=_handlers,
    cli=cli,
    cli_name="simulate",
    migrations=Path(__file__).parent / "migrations",
    encrypted_columns=(
        EncryptedColumn("connections", "id", "credentials"),
        EncryptedColumn("connection_oauth_apps", "id", "client_secret"),
        EncryptedColumn("connection_oauth_states", "id", "code_verifier"),
    ),
    on_start=_start,
    on_stop=_stop,
)
