"""Record a batch of delivery outcomes in the one transaction that completes the batch's jobs.

Per outcome: the attempt row (when a request was made), the delivery's new state, and for a
final outcome the ordering key's successor and a ``webhook.delivered``/``webhook.failed``
event; per endpoint: its health (consecutive failures, backoff, disabling after a 410 or a
long run of failures, with ``endpoint.disabled``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.queue.jobs import Job
from interlink.queue.worker import BatchContext
from interlink.store.database import pipelined
from interlink.store.direct import write_many
from interlink.store.types import utcnow
from interlink.webhooks.outbound.finishing import emit_all, finish_delivery
from interlink.webhooks.outbound.sender import AttemptResult, CompiledEndpoint
from interlink.webhooks.outbound.state import OutboundState
from interlink.webhooks.outbound.tables import (
    outbound_attempts,
    outbound_deliveries,
    outbound_endpoints,
)

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["Outcome", "Plan", "plan_outcomes", "write_plan"]

_GONE = 410
# Only the generation that was attempted: a resend while the attempt was in flight started a
# new generation, whose state this attempt's outcome must not overwrite.
_UPDATE_DELIVERY = pipelined(
    update(outbound_deliveries)
    .where(
        outbound_deliveries.c.id == bindparam("b_id"),
        outbound_deliveries.c.generation == bindparam("b_generation"),
    )
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        round_attempts=bindparam("b_round"),
        next_attempt_at=bindparam("b_next"),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        updated_at=bindparam("b_now"),
    )
)
_INSERT_ATTEMPTS = pipelined(outbound_attempts.insert())
# A success clears the endpoint's failure state. The condition is checked in the table, not
# on the row the batch read, which may predate another batch's failures. A healthy endpoint's
# row is rewritten only once its last success is a minute old; otherwise no row matches.
_SUCCEEDED = pipelined(
    update(outbound_endpoints)
    .where(
        outbound_endpoints.c.id == bindparam("endpoint_id"),
        or_(
            outbound_endpoints.c.consecutive_failures > 0,
            outbound_endpoints.c.next_attempt_not_before.is_not(None),
            outbound_endpoints.c.last_success_at.is_(None),
            outbound_endpoints.c.last_success_at < bindparam("minute_ago"),
        ),
    )
    .values(
        consecutive_failures=0,
        first_failure_at=None,
        next_attempt_not_before=None,
        last_success_at=bindparam("now"),
    )
)


@dataclass(frozen=True)
class Outcome:
    """One job's result: an attempt (``result``) or a reason it was not attempted (``skip``)."""

    job: Job
    row: Any
    endpoint: Any
    result: AttemptResult | None
    skip: str | None
    compiled: CompiledEndpoint | None = None


def _describe(result: AttemptResult) -> str:
    if result.status_code is not None:
        return f"HTTP {result.status_code}"
    return f"{result.error_class}: {result.error}"


@dataclass
class Plan:
    """The writes a batch of outcomes needs, decided before any transaction opens."""

    outcomes: list[Outcome]
    attempts: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    finals: list[tuple[Outcome, str, str | None]]
    health: dict[str, list[AttemptResult]]
    gone: set[str]


def plan_outcomes(state: OutboundState, ctx: BatchContext, outcomes: list[Outcome]) -> Plan:
    """Decide each job's fate (retries are registered on ``ctx`` now) and what to write."""
    now = utcnow()
    attempts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    finals: list[tuple[Outcome, str, str | None]] = []
    health: dict[str, list[AttemptResult]] = defaultdict(list)
    gone: set[str] = set()
    for outcome in outcomes:
        row, result = outcome.row, outcome.result
        change = {"b_id": row.id, "b_generation": row.generation, "b_now": now, "b_next": None}
        if result is None:
            change.update(
                b_status="failed",
                b_attempts=row.attempts,
                b_round=row.round_attempts,
                b_code=None,
                b_error=outcome.skip,
            )
            updates.append(change)
            finals.append((outcome, "failed", outcome.skip))
            continue
        state.metrics.attempts.labels("succeeded" if result.succeeded else "failed").inc()
        state.metrics.latency.labels().observe(result.duration_ms / 1000)
        attempts.append(_attempt_row(outcome, result, outcome.job.attempts > 1))
        health[row.endpoint_id].append(result)
        change.update(
            b_attempts=row.attempts + 1,
            b_round=row.round_attempts + 1,
            b_code=result.status_code,
            b_error=None if result.succeeded else _describe(result),
        )
        if result.succeeded:
            change["b_status"] = "succeeded"
            finals.append((outcome, "succeeded", None))
        else:
            assert outcome.compiled is not None
            delay = None
            if result.status_code == _GONE:
                gone.add(row.endpoint_id)
            else:
                delay = outcome.compiled.schedule.next_delay(
                    row.round_attempts + 1,
                    status=result.status_code,
                    retry_after_header=result.retry_after,
                    error_class=result.error_class,
                    now=now,
                )
            if delay is None:
                change["b_status"] = "failed"
                finals.append((outcome, "failed", _describe(result)))
            else:
                change.update(b_status="pending", b_next=now + timedelta(seconds=delay))
                ctx.retry(outcome.job, _describe(result), delay)
        updates.append(change)
    return Plan(outcomes, attempts, updates, finals, health, gone)


async def write_plan(
    runtime: Runtime, state: OutboundState, conn: AsyncConnection, plan: Plan
) -> None:
    """Write a plan's attempts, delivery states, health, successors and events in ``conn``."""
    if plan.attempts:
        await write_many(conn, _INSERT_ATTEMPTS, plan.attempts)
    if plan.updates:
        await write_many(conn, _UPDATE_DELIVERY, plan.updates)
    for endpoint_id, results in plan.health.items():
        await _update_health(runtime, state, conn, plan.outcomes, endpoint_id, results, plan.gone)
    found = [await finish_delivery(runtime, conn, *final) for final in plan.finals]
    await emit_all(runtime, conn, [event for event in found if event is not None])


def _attempt_row(outcome: Outcome, result: AttemptResult, retried: bool) -> dict[str, Any]:
    row = outcome.row
    return {
        "id": new_id("att"),
        "tenant_id": row.tenant_id,
        "message_id": row.message_id,
        "endpoint_id": row.endpoint_id,
        "event_type": row.event_type,
        "status": "succeeded" if result.succeeded else "failed",
        "trigger": "retry" if row.round_attempts or retried else "scheduled",
        "url": outcome.endpoint.url,
        "response_status_code": result.status_code,
        "response_headers": result.headers,
        "response_body": result.body,
        "error_class": result.error_class,
        "error": result.error,
        "duration_ms": round(result.duration_ms, 3),
        "created_at": result.started_at,
    }


async def _update_health(
    runtime: Runtime,
    state: OutboundState,
    conn: AsyncConnection,
    outcomes: list[Outcome],
    endpoint_id: str,
    results: list[AttemptResult],
    gone: set[str],
) -> None:
    endpoint = next(o.endpoint for o in outcomes if o.row.endpoint_id == endpoint_id)
    now = utcnow()
    table = outbound_endpoints
    if any(result.succeeded for result in results) and endpoint_id not in gone:
        params = {"endpoint_id": endpoint_id, "now": now, "minute_ago": now - timedelta(minutes=1)}
        await conn.execute(_SUCCEEDED, params)
        return
    # The failure counts are taken from the table as this update leaves it, not from the row
    # the batch read: that may predate another batch's success or failures.
    recorded = (
        await conn.execute(
            update(table)
            .where(table.c.id == endpoint_id)
            .values(
                consecutive_failures=table.c.consecutive_failures + len(results),
                first_failure_at=func.coalesce(
                    table.c.first_failure_at,
                    bindparam("now", now, type_=table.c.first_failure_at.type),
                ),
                last_failure_at=now,
            )
            .returning(
                table.c.consecutive_failures, table.c.first_failure_at, table.c.last_success_at
            )
        )
    ).first()
    if recorded is None:
        return  # the endpoint was deleted meanwhile (its deliveries with it)
    backoff = state.config.backoff
    wait = timedelta(seconds=backoff.delay(recorded.consecutive_failures))
    reason = None
    if endpoint_id in gone:
        reason = "the endpoint answered 410 Gone"
    elif backoff.should_disable(recorded.first_failure_at, recorded.last_success_at, now):
        reason = f"failing without a success since {recorded.first_failure_at.isoformat()}"
    not_before = now + wait
    this_endpoint = table.c.id == endpoint_id
    if reason is None:
        await conn.execute(
            update(table).where(this_endpoint).values(next_attempt_not_before=not_before)
        )
        return
    result = await conn.execute(
        update(table)
        .where(this_endpoint, table.c.disabled.is_(False))
        .values(
            next_attempt_not_before=not_before,
            disabled=True,
            disabled_reason=reason,
            version=table.c.version + 1,
        )
    )
    if result.rowcount:
        tenant_id = next(o.row.tenant_id for o in outcomes if o.row.endpoint_id == endpoint_id)
        await runtime.outbox.emit(
            conn,
            "endpoint.disabled",
            {"endpoint_id": endpoint_id, "url": endpoint.url, "reason": reason},
            tenant_id=tenant_id,
            component="webhooks",
            subject=endpoint_id,
        )
