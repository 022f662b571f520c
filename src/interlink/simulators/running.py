"""Creating and serving simulators: in-process for tests, until cancelled for the CLI."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from interlink.simulators.app import ProviderSimulator
from interlink.simulators.faults import Faults
from interlink.simulators.oauth import Clock

__all__ = [
    "SIMULATOR_NAMES",
    "RunningSimulator",
    "create_simulator",
    "run_simulator",
    "serve_simulator",
]

SIMULATOR_NAMES: tuple[str, ...] = ("stripe", "salesforce", "hubspot", "github")
"""Providers with a simulator, in the order the CLI lists them."""


def create_simulator(
    name: str,
    *,
    records: int = 100,
    seed: int = 0,
    faults: Faults | str = "none",
    clock: Clock = time.time,
    record_requests: bool = True,
) -> ProviderSimulator:
    """Instantiate the simulator of provider ``name``.

    Raises:
        ValueError: no simulator for that provider, or an unknown fault profile.
    """
    if name not in SIMULATOR_NAMES:
        raise ValueError(f"no simulator for '{name}' (available: {', '.join(SIMULATOR_NAMES)})")
    module = importlib.import_module(f"interlink.simulators.{name}")
    cls: type[ProviderSimulator] = module.SIMULATOR
    return cls(
        records=records, seed=seed, faults=faults, clock=clock, record_requests=record_requests
    )


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on 127.0.0.1: its ``url`` and the ``simulator`` to assert on."""

    url: str
    simulator: ProviderSimulator
    host: str = field(default="127.0.0.1")
    port: int = field(default=0)


async def _start(
    simulator: ProviderSimulator, host: str, port: int, shutdown_timeout: float
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        simulator.create_app(),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    if bound == 0 and runner.addresses:
        bound = int(runner.addresses[0][1])
    return runner, bound


@asynccontextmanager
async def serve_simulator(
    name: str,
    *,
    records: int = 100,
    faults: Faults | str = "none",
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = time.time,
    record_requests: bool = True,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator in-process for the duration of the ``async with`` block.

    Example:
        >>> async with serve_simulator("stripe", records=50) as sim:
        ...     url = f"{sim.url}/v1/customers"
        ...     assert sim.simulator.count("/v1/customers") == 0

    Args:
        name: one of :data:`SIMULATOR_NAMES`.
        records: records generated per stream.
        faults: a :class:`Faults` or profile names, comma-separated.
        port: 0 picks a free port.
        clock: time source for token expiry and timestamps (tests pass a fake one).
    """
    simulator = create_simulator(
        name,
        records=records,
        seed=seed,
        faults=faults,
        clock=clock,
        record_requests=record_requests,
    )
    runner, bound = await _start(simulator, host, port, shutdown_timeout=0.5)
    try:
        yield RunningSimulator(f"http://{host}:{bound}", simulator, host, bound)
    finally:
        await runner.cleanup()


async def run_simulator(
    name: str,
    host: str = "127.0.0.1",
    port: int = 12111,
    records: int = 100,
    faults: Faults | str = "none",
    *,
    seed: int = 0,
    record_requests: bool = True,
    ready: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Serve a simulator until cancelled (what ``interlink simulate`` runs).

    Args:
        record_requests: keep the last requests for ``GET /_sim/requests`` (turn off for
            benchmarks).
        ready: called once the server listens (e.g. to print its URL).

    Raises:
        ValueError: unknown simulator or fault profile.
    """
    simulator = create_simulator(
        name, records=records, seed=seed, faults=faults, record_requests=record_requests
    )
    runner, bound = await _start(simulator, host, port, shutdown_timeout=2.0)
    try:
        if ready is not None:
            ready(RunningSimulator(f"http://{host}:{bound}", simulator, host, bound))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
