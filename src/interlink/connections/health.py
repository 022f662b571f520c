"""Health of providers and connections: a scheduled probe job plus passive egress figures.

The probe job re-enqueues itself for the next period with an idempotency key per period, so
however many processes start, one job runs per period. Each run probes the connections whose
last probe is oldest (refreshing tokens that are due on the way), records the outcome on the
connection and leaves the passive figures (breakers, error rate of recent calls) to the
process that made the calls.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from interlink.connections import probes, service
from interlink.connections.credentials import view_of
from interlink.connections.lifecycle import probe
from interlink.connections.oauth import purge_states
from interlink.connections.refresh import ConnectionUnusable, RefreshFailed, ensure_fresh
from interlink.connections.state import ConnectionsState, connections_state
from interlink.egress import CircuitState
from interlink.queue.jobs import Job
from interlink.queue.worker import JobContext, JobHandler
from interlink.store.types import utcnow

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["PROBE_JOB", "probe_handler", "provider_health", "schedule_probes"]

PROBE_JOB = "connections.health_probe"
BATCH = 200
log = structlog.get_logger("interlink.connections.health")


def _period(state: ConnectionsState, at: float) -> int:
    return math.floor(at / state.probe_interval)


async def schedule_probes(runtime: Runtime, *, period: int | None = None) -> None:
    """Enqueue the probe run of ``period`` (default: the current one) once across processes."""
    state = connections_state(runtime)
    number = _period(state, time.time()) if period is None else period
    run_at = datetime.fromtimestamp(number * state.probe_interval, UTC)
    async with runtime.db.transaction() as conn:
        await runtime.queue.enqueue(
            conn,
            PROBE_JOB,
            {"period": number},
            run_at=max(run_at, utcnow()),
            idempotency_key=f"{PROBE_JOB}:{number}",
            max_attempts=3,
        )


async def probe_once(state: ConnectionsState) -> int:
    """Probe one batch of connections; returns how many were probed."""
    runtime = state.runtime
    horizon = utcnow() - timedelta(seconds=state.probe_interval / 2)
    async with runtime.db.transaction() as conn:
        ids = await probes.probe_batch(conn, horizon, BATCH)
    for connection_id in ids:
        async with runtime.db.transaction() as conn:
            row = await service.get_connection(conn, connection_id)
        if row is None:
            continue
        try:
            view = await ensure_fresh(state, view_of(row, state.catalog, runtime.vault))
            result = await probe(state, view)
        except (ConnectionUnusable, RefreshFailed) as error:
            healthy, detail = False, str(error)
        except Exception as error:  # a connection that no longer fits the catalog
            healthy, detail = False, f"cannot probe: {error}"
        else:
            if result is None:
                continue
            healthy, detail = result.healthy, result.detail
        async with runtime.db.transaction() as conn:
            await probes.record_probe(conn, connection_id, healthy, detail)
    return len(ids)


def probe_handler(runtime: Runtime) -> JobHandler:
    async def handle(job: Job, ctx: JobContext) -> None:
        state = connections_state(runtime)
        period = int(job.payload.get("period", _period(state, time.time())))
        probed = await probe_once(state)
        log.info("connections probed", count=probed)
        next_period = max(period + 1, _period(state, time.time()) + 1)
        async with ctx.transaction() as conn:
            await purge_states(conn, timedelta(days=1))
            await runtime.queue.enqueue(
                conn,
                PROBE_JOB,
                {"period": next_period},
                run_at=datetime.fromtimestamp(next_period * state.probe_interval, UTC),
                idempotency_key=f"{PROBE_JOB}:{next_period}",
                max_attempts=3,
            )

    return handle


async def provider_health(state: ConnectionsState) -> list[dict[str, Any]]:
    """Per provider: breakers, recent error rate (this process), connections and probe counts."""
    async with state.runtime.db.transaction() as conn:
        by_status = await probes.count_by_provider(conn)
        outcomes = await probes.probe_counts(conn)
    breakers = state.breakers.states()
    found = []
    for name in state.catalog:
        hosts = {h: s.value for h, s in breakers.items() if state.provider_hosts.get(h) == name}
        calls, rate = state.passive_for(name).error_rate()
        checked = outcomes.get(name, {})
        if any(s != CircuitState.CLOSED.value for s in hosts.values()):
            status = "down"
        elif (calls >= 10 and rate > 0.2) or checked.get("unhealthy", 0) > checked.get(
            "healthy", 0
        ):
            status = "degraded"
        elif calls or checked.get("healthy"):
            status = "healthy"
        else:
            status = "unknown"
        found.append(
            {
                "provider": name,
                "status": status,
                "circuit_breakers": hosts,
                "recent_calls": calls,
                "error_rate": round(rate, 4),
                "connections": by_status.get(name, {}),
                "probes": checked,
            }
        )
    return found
