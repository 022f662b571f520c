"""The received-events log: listing, reading, and replaying what providers sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.queue.jobs import JobQueue
from interlink.store.types import utcnow
from interlink.webhooks.inbound.rows import HASHED_ID_PREFIX, KEY_LIMIT, delivery_key
from interlink.webhooks.inbound.tables import inbound_events, inbound_forwards
from interlink.webhooks.inbound.writer import PROCESS_JOB

__all__ = [
    "MAX_REPLAY",
    "EventFilters",
    "get_event",
    "list_events",
    "list_forwards",
    "replay_event",
    "replay_range",
]

MAX_REPLAY = 10_000
_SUMMARY = [column for column in inbound_events.c if column.name not in ("body", "headers")]


@dataclass(frozen=True)
class EventFilters:
    """Filters of the log. ``status`` may be ``accepted``, ``duplicate`` (accepted and seen more
    than once) or ``rejected``."""

    status: str | None = None
    processing_status: str | None = None
    event_type: str | None = None
    delivery_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(
    conn: AsyncConnection,
    tenant_id: str,
    source_id: str,
    filters: EventFilters,
    *,
    after: str | None,
    limit: int,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """A page of the log (without bodies and headers), ordered by id."""
    c = inbound_events.c
    query = select(*_SUMMARY).where(c.tenant_id == tenant_id, c.source_id == source_id)
    if filters.status == "duplicate":
        query = query.where(c.status == "accepted", c.seen_count > 1)
    elif filters.status:
        query = query.where(c.status == filters.status)
    if filters.processing_status:
        query = query.where(c.processing_status == filters.processing_status)
    if filters.event_type:
        query = query.where(c.event_type == filters.event_type)
    if filters.delivery_id:
        query = query.where(c.delivery_id == filters.delivery_id, _by_delivery(filters.delivery_id))
    if filters.since:
        query = query.where(c.received_at >= filters.since)
    if filters.until:
        query = query.where(c.received_at < filters.until)
    if after:
        query = query.where(c.id < after if newest_first else c.id > after)
    query = query.order_by(c.id.desc() if newest_first else c.id).limit(limit)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


def _by_delivery(delivery_id: str) -> ColumnElement[bool]:
    """Where the unique (source_id, dedupe_key) index finds the events of ``delivery_id``: by
    its own key. An id of the clipped length may be the start of a longer one, keyed by the
    longer one's digest: then the source's digest keys are looked through too (``LIKE``, so
    that it holds under any collation). An id that held NUL characters is stored cleaned and
    keyed by the digest of the original, so this filter does not find it."""
    key = inbound_events.c.dedupe_key
    own = key == delivery_key(delivery_id)
    if len(delivery_id) < KEY_LIMIT:
        return own
    return or_(own, key.like(HASHED_ID_PREFIX + "%"))


async def get_event(
    conn: AsyncConnection, tenant_id: str, source_id: str, event_id: str
) -> dict[str, Any] | None:
    query = select(inbound_events).where(
        inbound_events.c.id == event_id,
        inbound_events.c.source_id == source_id,
        inbound_events.c.tenant_id == tenant_id,
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_forwards(conn: AsyncConnection, event_id: str) -> list[dict[str, Any]]:
    query = (
        select(inbound_forwards)
        .where(inbound_forwards.c.event_id == event_id)
        .order_by(inbound_forwards.c.id)
    )
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def replay_event(
    conn: AsyncConnection, queue: JobQueue, event: dict[str, Any]
) -> tuple[int, str | None]:
    """Process an accepted event again; returns the replay number and the job id."""
    replay = int(event["replay_count"]) + 1
    await conn.execute(
        update(inbound_events)
        .where(inbound_events.c.id == event["id"])
        .values(replay_count=replay, last_replayed_at=utcnow(), processing_status="pending")
    )
    job_id = await queue.enqueue(
        conn,
        PROCESS_JOB,
        {"event_id": event["id"], "replay": replay},
        tenant_id=event["tenant_id"],
        idempotency_key=f"inbound:{event['id']}:replay:{replay}",
    )
    return replay, job_id


async def replay_range(
    conn: AsyncConnection,
    queue: JobQueue,
    tenant_id: str,
    source_id: str,
    since: datetime,
    until: datetime | None,
) -> tuple[int, bool]:
    """Replay the accepted events received in ``[since, until)``, oldest first, at most
    :data:`MAX_REPLAY`; returns how many and whether more remain."""
    c = inbound_events.c
    query = (
        select(c.id, c.tenant_id, c.replay_count)
        .where(
            c.tenant_id == tenant_id,
            c.source_id == source_id,
            c.status == "accepted",
            c.received_at >= since,
        )
        .order_by(c.received_at, c.id)
        .limit(MAX_REPLAY + 1)
    )
    if until is not None:
        query = query.where(c.received_at < until)
    rows = [dict(row) for row in (await conn.execute(query)).mappings()]
    more = len(rows) > MAX_REPLAY
    for row in rows[:MAX_REPLAY]:
        await replay_event(conn, queue, row)
    return min(len(rows), MAX_REPLAY), more
