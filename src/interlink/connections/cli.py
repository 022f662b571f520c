"""``interlink simulate PROVIDER``: serve a provider simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

__all__ = ["simulate"]


def simulate(
    provider: Annotated[str, typer.Argument(help="stripe, salesforce, hubspot or github")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port)")] = 12111,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    records: Annotated[int, typer.Option(min=0, help="Records generated per stream")] = 100,
    faults: Annotated[
        str,
        typer.Option(
            help="Fault profiles, comma-separated: none, latency, rate_limit, flaky, timeout, "
            "expiring_tokens, revoked_refresh, access_denied"
        ),
    ] = "none",
    seed: Annotated[int, typer.Option(help="Seed of the generated records")] = 0,
) -> None:
    """Serve a provider simulator (OAuth server and API) until interrupted.

    Its OAuth client is ``interlink-sim-client`` / ``interlink-sim-secret``; ``/_sim/faults``
    switches faults at run time, ``/_sim/stats`` counts requests, ``POST /_sim/tokens`` mints a
    token without the browser dance.
    """
    from interlink.cli.main import CLIError
    from interlink.simulators import (
        SIM_CLIENT_ID,
        SIM_CLIENT_SECRET,
        SIMULATOR_NAMES,
        Faults,
        RunningSimulator,
        run_simulator,
    )

    if provider not in SIMULATOR_NAMES:
        raise CLIError(f"no simulator for '{provider}' (available: {', '.join(SIMULATOR_NAMES)})")
    try:
        parsed = Faults.parse(faults)
    except ValueError as error:
        raise CLIError(str(error)) from error

    def ready(running: RunningSimulator) -> None:
        typer.echo(
            f"{provider} simulator on {running.url} (faults: {faults}, records: {records}); "
            f"OAuth client {SIM_CLIENT_ID} / {SIM_CLIENT_SECRET}. Ctrl-C stops it."
        )

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                run_simulator(provider, host, port, records, parsed, seed=seed, ready=ready)
            )
    except OSError as error:
        raise CLIError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
