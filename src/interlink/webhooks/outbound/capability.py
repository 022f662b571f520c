"""The outbound-webhooks capability: what it plugs into the core."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from interlink.capability import Capability, EncryptedColumn
from interlink.webhooks.outbound.api import endpoints as endpoints_api
from interlink.webhooks.outbound.api import event_types as event_types_api
from interlink.webhooks.outbound.api import messages as messages_api
from interlink.webhooks.outbound.api.fast_accept import MOUNT, MessageAcceptApp
from interlink.webhooks.outbound.cli import cli
from interlink.webhooks.outbound.delivery import deliver_handler
from interlink.webhooks.outbound.fanout import EventFanout
from interlink.webhooks.outbound.ordering import DELIVER_JOB
from interlink.webhooks.outbound.retention import PURGE_JOB, purge_work
from interlink.webhooks.outbound.state import outbound_state

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from interlink.events.relay import EventSubscriber
    from interlink.queue.worker import BatchHandler, HourlyWork, JobHandler
    from interlink.runtime import Runtime

__all__ = ["capability"]


async def _start(runtime: Runtime) -> None:
    outbound_state(runtime)  # built now, so a bad INTERLINK_RETRY_SCHEDULE fails at start
    inbound = any(capability.name == "inbound" for capability in runtime.capabilities)
    if runtime.settings.demo and runtime.serving and inbound:  # `interlink serve --demo`
        from interlink.webhooks.demo import start_webhooks_demo

        typer.echo((await start_webhooks_demo(runtime)).describe())


async def _stop(runtime: Runtime) -> None:
    state = outbound_state(runtime)
    await state.writer.stop()
    await state.recorder.stop()
    await state.egress.close()


def _handlers(runtime: Runtime) -> Mapping[str, JobHandler | BatchHandler]:
    return {DELIVER_JOB: deliver_handler(runtime)}


def _hourly_jobs(runtime: Runtime) -> Mapping[str, HourlyWork]:
    return {PURGE_JOB: purge_work(runtime)}


def _subscribers(runtime: Runtime) -> Sequence[EventSubscriber]:
    return [EventFanout(runtime)]


capability = Capability(
    name="outbound",
    routers=(endpoints_api.router, messages_api.router, event_types_api.router),
    # The message-accept hot path, served ahead of FastAPI's router (see api/fast_accept.py).
    asgi_mounts={MOUNT: MessageAcceptApp()},
    job_handlers=_handlers,
    hourly_jobs=_hourly_jobs,
    event_subscribers=_subscribers,
    cli=cli,
    cli_name="webhooks",
    migrations=Path(__file__).parent / "migrations",
    encrypted_columns=(
        EncryptedColumn("outbound_endpoints", "id", "secret"),
        EncryptedColumn("outbound_endpoints", "id", "previous_secret"),
        EncryptedColumn("outbound_endpoints", "id", "signing_key"),
        EncryptedColumn("outbound_endpoints", "id", "auth"),
    ),
    on_start=_start,
    on_stop=_stop,
)
