"""Messages: store one and a delivery per matching, enabled endpoint, in the caller's transaction.

A message with an idempotency key (the ``id`` the application gave, or its
``Idempotency-Key`` header) is unique per tenant within the idempotency window: a repeat
answers the original and creates nothing, also when two requests race (a unique constraint and
``ON CONFLICT DO NOTHING`` decide, not a read before the write).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.ids import new_id
from interlink.queue.jobs import JobQueue
from interlink.store.database import pipelined
from interlink.store.direct import write_many
from interlink.store.types import utcnow
from interlink.webhooks.outbound.filters import PayloadFilter, compile_filter
from interlink.webhooks.outbound.ordering import JOB_MAX_ATTEMPTS, delivery_job, join_key
from interlink.webhooks.outbound.tables import (
    ENDPOINT_SEND_COLUMNS,
    outbound_deliveries,
    outbound_endpoints,
    outbound_messages,
)

__all__ = ["DeliveryView", "MessageRequest", "create_message", "create_messages"]


@dataclass(frozen=True)
class MessageRequest:
    """What the application (or an internal event) asks to send."""

    tenant_id: str
    event_type: str
    payload: dict[str, Any]
    idempotency_key: str | None = None
    ordering_key: str | None = None
    source_event_id: str | None = None
    explicit_only: bool = False


def _subscribed(endpoint: Any, request: MessageRequest) -> bool:
    types = endpoint.event_types
    if not types:
        return not request.explicit_only
    return request.event_type in types


def _payload_filter(cache: dict[tuple[str, int], Any], endpoint: Any) -> PayloadFilter:
    key = (endpoint.id, endpoint.version)
    compiled = cache.get(key)
    if compiled is None:
        compiled = cache[key] = compile_filter(endpoint.filter)
    assert isinstance(compiled, PayloadFilter)
    return compiled


def _message_row(request: MessageRequest, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "tenant_id": request.tenant_id,
        "event_type": request.event_type,
        "payload": request.payload,
        "idempotency_key": request.idempotency_key,
        "ordering_key": request.ordering_key,
        "source_event_id": request.source_event_id,
        "created_at": now,
        "payload_purged_at": None,
    }


async def _insert_message(
    conn: AsyncConnection, request: MessageRequest, window: timedelta, *, pg: bool
) -> tuple[dict[str, Any], bool]:
    key = request.idempotency_key
    assert key is not None
    now = utcnow()
    row = _message_row(request, now)
    insert = postgresql.insert if pg else sqlite.insert
    stmt = insert(outbound_messages).values(**row).on_conflict_do_nothing()
    if (await conn.execute(stmt.returning(outbound_messages.c.id))).first() is not None:
        return row, True
    existing = await _by_key(conn, request.tenant_id, key)
    if existing["created_at"] >= now - window:
        return existing, False
    # The earlier message is outside the window: the key is free again.
    await conn.execute(
        update(outbound_messages)
        .where(outbound_messages.c.id == existing["id"])
        .values(idempotency_key=None)
    )
    await conn.execute(outbound_messages.insert().values(**row))
    return row, True


async def _by_key(conn: AsyncConnection, tenant_id: str, key: str) -> dict[str, Any]:
    query = select(outbound_messages).where(
        outbound_messages.c.tenant_id == tenant_id, outbound_messages.c.idempotency_key == key
    )
    return dict((await conn.execute(query)).mappings().one())


# Built once: building a statement per call costs about as much as running it. The inserts
# are pipelined: on SQLite the writer does not wait for them (a failure fails the commit).
_INSERT_MESSAGES = pipelined(outbound_messages.insert())
_INSERT_DELIVERIES = pipelined(outbound_deliveries.insert())
_ENDPOINTS = select(
    outbound_endpoints.c.tenant_id,
    outbound_endpoints.c.event_types,
    outbound_endpoints.c.filter,
    *ENDPOINT_SEND_COLUMNS,
).where(
    outbound_endpoints.c.tenant_id.in_(bindparam("tenant_ids", expanding=True)),
    outbound_endpoints.c.disabled.is_(False),
)


async def _endpoints_by_tenant(conn: AsyncConnection, tenant_ids: set[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    if not tenant_ids:
        return found
    for row in await conn.execute(_ENDPOINTS, {"tenant_ids": sorted(tenant_ids)}):
        found[row.tenant_id].append(row)
    return found


@dataclass(frozen=True)
class DeliveryView:
    """A new delivery as the delivery handler reads it (the columns of its load query), handed
    along with its job (:attr:`Job.memo`, with the endpoint's row) when this process's worker
    takes the job at once: then nothing needs reading back."""

    id: str
    status: str
    generation: int
    round_attempts: int
    attempts: int
    ordering_key: str | None
    tenant_id: str
    message_id: str
    event_type: str
    payload: dict[str, Any]
    message_created_at: datetime
    endpoint_id: str

    @classmethod
    def of(cls, delivery: dict[str, Any], message: dict[str, Any]) -> DeliveryView:
        return cls(
            id=delivery["id"],
            status=delivery["status"],
            generation=delivery["generation"],
            round_attempts=delivery["round_attempts"],
            attempts=delivery["attempts"],
            ordering_key=delivery["ordering_key"],
            tenant_id=delivery["tenant_id"],
            message_id=message["id"],
            event_type=message["event_type"],
            payload=message["payload"],
            message_created_at=message["created_at"],
            endpoint_id=delivery["endpoint_id"],
        )


def _delivery(request: MessageRequest, message: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    now = message["created_at"]
    return {
        "id": new_id("dlv"),
        "tenant_id": request.tenant_id,
        "message_id": message["id"],
        "endpoint_id": endpoint_id,
        "status": "pending",
        "attempts": 0,
        "round_attempts": 0,
        "generation": 0,
        "next_attempt_at": now,
        "ordering_key": request.ordering_key,
        "order_seq": None,
        "created_at": now,
        "updated_at": now,
    }


async def create_messages(
    conn: AsyncConnection,
    queue: JobQueue,
    requests: Sequence[MessageRequest],
    *,
    filters: dict[tuple[str, int], Any],
    idempotency_window: timedelta,
    pg: bool,
) -> list[tuple[dict[str, Any], bool]]:
    """Store messages, their deliveries and jobs in ``conn``'s transaction, a few statements
    for the whole batch (rows of messages without a key, deliveries and jobs go in at once).

    Returns:
        Per request ``(message row, created)``; ``created`` is False when an earlier message
        with the same idempotency key answered instead (nothing was written for it).
    """
    results: list[tuple[dict[str, Any], bool]] = []
    plain: list[dict[str, Any]] = []
    # One moment for the batch's messages: committed together, and a datetime's text is made
    # once for all of their rows (store.types.sqlite_utc_text).
    now = utcnow()
    for request in requests:
        if request.idempotency_key is None:
            row = _message_row(request, now)
            plain.append(row)
            results.append((row, True))
        else:
            results.append(await _insert_message(conn, request, idempotency_window, pg=pg))
    if plain:
        await write_many(conn, _INSERT_MESSAGES, plain)
    created = [(req, row) for req, (row, new) in zip(requests, results, strict=True) if new]
    endpoints = await _endpoints_by_tenant(conn, {request.tenant_id for request, _ in created})
    deliveries: list[dict[str, Any]] = []
    jobs: dict[datetime | None, list[tuple[str, dict[str, Any], str | None, str | None]]]
    jobs = defaultdict(list)
    memos: list[tuple[DeliveryView, Any]] = []  # one per due delivery, if a worker here takes them
    handing = queue.taker is not None  # read once: the memos must line up with the jobs
    for request, message in created:
        for endpoint in endpoints.get(request.tenant_id, ()):
            if not _subscribed(endpoint, request):
                continue
            if endpoint.filter is not None and not _payload_filter(filters, endpoint).matches(
                request.payload
            ):
                continue
            delivery = _delivery(request, message, endpoint.id)
            deliveries.append(delivery)
            if request.ordering_key is not None:
                delivery["order_seq"], ready = await join_key(
                    conn, endpoint.id, request.ordering_key, delivery["id"], pg=pg
                )
                if not ready:
                    continue  # waits for its turn in the key
            # A failing endpoint's new messages wait for its backoff instead of hammering it.
            not_before = endpoint.next_attempt_not_before
            made = message["created_at"]
            run_at = not_before if not_before is not None and not_before > made else None
            jobs[run_at].append(delivery_job(delivery["id"], 0, request.tenant_id, endpoint.id))
            if run_at is None and handing:
                memos.append((DeliveryView.of(delivery, message), endpoint))
    if deliveries:
        await write_many(conn, _INSERT_DELIVERIES, deliveries)
    for run_at, items in jobs.items():
        # Due deliveries go straight to this process's worker when it has room (no claim),
        # with what it would otherwise read back: the delivery and its endpoint's row.
        await queue.enqueue_many(
            conn,
            items,
            run_at=run_at,
            max_attempts=JOB_MAX_ATTEMPTS,
            hand_off=run_at is None,
            memos=memos if run_at is None and handing else None,
        )
    return results


async def create_message(
    conn: AsyncConnection,
    queue: JobQueue,
    request: MessageRequest,
    *,
    filters: dict[tuple[str, int], Any],
    idempotency_window: timedelta,
    pg: bool,
) -> tuple[dict[str, Any], bool]:
    """:func:`create_messages` for one request."""
    results = await create_messages(
        conn, queue, [request], filters=filters, idempotency_window=idempotency_window, pg=pg
    )
    return results[0]
