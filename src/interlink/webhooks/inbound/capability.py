"""The inbound-webhooks capability: what it plugs into the core."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interlink.capability import Capability, EncryptedColumn
from interlink.webhooks.inbound.api import destinations as destinations_api
from interlink.webhooks.inbound.api import events as events_api
from interlink.webhooks.inbound.api import ingest_route
from interlink.webhooks.inbound.api import sources as sources_api
from interlink.webhooks.inbound.cli import cli
from interlink.webhooks.inbound.forwarding import FORWARD_JOB, forward_handler
from interlink.webhooks.inbound.ingest import ingest_app
from interlink.webhooks.inbound.processing import process_handler
from interlink.webhooks.inbound.retention import PURGE_JOB, purge_work
from interlink.webhooks.inbound.state import inbound_state
from interlink.webhooks.inbound.writer import PROCESS_JOB

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlink.queue.worker import BatchHandler, HourlyWork, JobHandler
    from interlink.runtime import Runtime

__all__ = ["capability"]


async def _start(runtime: Runtime) -> None:
    inbound_state(runtime).writer.start()


async def _stop(runtime: Runtime) -> None:
    state = inbound_state(runtime)
    await state.writer.stop()
    await state.egress.close()


def _handlers(runtime: Runtime) -> Mapping[str, JobHandler | BatchHandler]:
    return {
        PROCESS_JOB: process_handler(runtime),
        FORWARD_JOB: forward_handler(runtime),
    }


def _hourly_jobs(runtime: Runtime) -> Mapping[str, HourlyWork]:
    return {PURGE_JOB: purge_work(runtime)}


capability = Capability(
    name="inbound",
    routers=(
        ingest_route.router,
        sources_api.router,
        events_api.router,
        destinations_api.router,
    ),
    asgi_mounts={"/in/": ingest_app},
    job_handlers=_handlers,
    hourly_jobs=_hourly_jobs,
    cli=cli,
    cli_name="sources",
    migrations=Path(__file__).parent / "migrations",
    encrypted_columns=(
        EncryptedColumn("inbound_sources", "id", "secret"),
        EncryptedColumn("inbound_sources", "id", "previous_secret"),
        EncryptedColumn("inbound_destinations", "id", "secret"),
    ),
    on_start=_start,
    on_stop=_stop,
)
