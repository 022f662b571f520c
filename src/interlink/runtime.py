"""The runtime: everything a process of Interlink holds, built once from the settings.

Routes, workers and the CLI all reach services through one ``Runtime``; nothing lives in
module-level state, so tests can build as many runtimes as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from interlink.capabilities import load_capabilities
from interlink.capability import Capability, EncryptedColumn
from interlink.events.outbox import Outbox
from interlink.events.relay import EventRelay, EventSubscriber
from interlink.housekeeping import PURGE_JOB, purge_work
from interlink.observability.metrics import Metrics
from interlink.observability.tracing import configure_tracing
from interlink.queue.jobs import JobQueue
from interlink.queue.worker import BatchHandler, HourlyWork, JobHandler, Worker, hourly_handler
from interlink.settings import Settings
from interlink.store import migrate
from interlink.store.database import Database
from interlink.store.types import utcnow
from interlink.vault import Vault, load_master_keys

__all__ = ["Runtime", "supervised"]

log = structlog.get_logger("interlink.runtime")


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
) -> None:
    """Run ``run()`` until it returns; when it raises, log the error and run it again.

    A background loop that dies of an unexpected error must not leave the API accepting work
    that nothing processes: it comes back after ``first_delay`` seconds, doubling up to
    ``max_delay`` while it keeps failing, until ``stop`` is set.
    """
    delay = first_delay
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("background task failed; restarting it", task=name, retry_in=delay)
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            return
        delay = min(max_delay, delay * 2)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        capabilities: Sequence[Capability] | None = None,
        span_processor: SpanProcessor | None = None,
    ) -> None:
        self.settings = settings
        self.db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        self.vault = Vault(load_master_keys(settings))
        self.metrics = Metrics()
        self.queue = JobQueue(
            self.db,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
        )
        self.outbox = Outbox(self.db)
        self.capabilities = list(load_capabilities() if capabilities is None else capabilities)
        self.tracer_provider: TracerProvider | None = configure_tracing(
            settings.otlp_endpoint, settings.service_name, processor=span_processor
        )
        self.extra_handlers: dict[str, JobHandler | BatchHandler] = {}
        self.extra_subscribers: list[EventSubscriber] = []
        # Per-capability state (clients, caches) lives here, keyed by capability name.
        self.state: dict[str, Any] = {}
        # True in the process that serves the API (set before start): the demo seeds only there,
        # not in a CLI command or a worker that shares its settings.
        self.serving = False
        self._started = False

    @property
    def listen_url(self) -> str | None:
        if not self.db.is_postgres:
            return None
        _, _, rest = self.settings.database_url.partition("://")
        return f"postgresql://{rest}"

    @property
    def encrypted_columns(self) -> list[EncryptedColumn]:
        return [column for cap in self.capabilities for column in cap.encrypted_columns]

    async def start(self, *, migrate_schema: bool) -> None:
        """Migrate (if asked) and start every capability; a second call does nothing."""
        if self._started:
            return
        self._started = True
        if migrate_schema:
            await migrate.upgrade(self.db, capabilities=self.capabilities)
        await self.db.start_checkpoints()
        for capability in self.capabilities:
            if capability.on_start is not None:
                await capability.on_start(self)

    async def close(self) -> None:
        for capability in reversed(self.capabilities):
            if capability.on_stop is not None:
                with contextlib.suppress(Exception):
                    await capability.on_stop(self)
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        await self.db.dispose()

    def hourly_jobs(self) -> Mapping[str, HourlyWork]:
        """The jobs run once an hour per deployment, the core's housekeeping first."""
        jobs: dict[str, HourlyWork] = {PURGE_JOB: purge_work(self)}
        for capability in self.capabilities:
            if capability.hourly_jobs is not None:
                jobs.update(capability.hourly_jobs(self))
        return jobs

    def job_handlers(self) -> Mapping[str, JobHandler | BatchHandler]:
        hourly = self.hourly_jobs().items()
        handlers: dict[str, JobHandler | BatchHandler] = {
            kind: hourly_handler(self.queue, kind, work) for kind, work in hourly
        }
        for capability in self.capabilities:
            if capability.job_handlers is not None:
                handlers.update(capability.job_handlers(self))
        handlers.update(self.extra_handlers)
        return handlers

    def subscribers(self) -> list[EventSubscriber]:
        found: list[EventSubscriber] = []
        for capability in self.capabilities:
            if capability.event_subscribers is not None:
                found.extend(capability.event_subscribers(self))
        return [*found, *self.extra_subscribers]

    def worker(self, concurrency: int | None = None) -> Worker:
        return Worker(
            self.queue,
            self.job_handlers(),
            concurrency=concurrency or self.settings.worker_concurrency,
            poll_seconds=self.settings.job_poll_seconds,
            shutdown_grace=self.settings.shutdown_grace_seconds,
            metrics=self.metrics,
            listen_url=self.listen_url,
        )

    async def run_workers(self, stop: asyncio.Event, concurrency: int | None = None) -> None:
        """Run the job worker and the event relay until ``stop`` is set, and ask for this hour's
        run of every hourly job (:meth:`hourly_jobs`: the core's housekeeping,
        ``interlink.housekeeping``, and the capabilities' own)."""
        relay = EventRelay(
            self.outbox,
            self.subscribers(),
            poll_seconds=self.settings.job_poll_seconds,
            metrics=self.metrics,
            listen_url=self.listen_url,
            settles=True,
        )
        worker = self.worker(concurrency)
        tasks = [
            asyncio.create_task(supervised("worker", lambda: worker.run(stop), stop)),
            asyncio.create_task(supervised("relay", lambda: relay.run(stop), stop)),
            asyncio.create_task(supervised("housekeeping", self._ask_for_housekeeping, stop)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _ask_for_housekeeping(self) -> None:
        for kind in self.hourly_jobs():
            await self.queue.enqueue_hourly(kind, utcnow())
