"""Token buckets kept in the store, for deployments that share a database but no Redis.

Each key is one row of ``rate_buckets`` (tokens and the time of the last refill), read with
``FOR UPDATE`` and rewritten in one short transaction, so every process on the database draws
from the same budget. It costs a transaction per limited call, which is why Redis is preferred
when it is configured; on the embedded store (one process) the in-process buckets are already
shared by every worker and are used instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from interlink.egress.ratelimit import Limit, TokenBuckets
from interlink.store.database import Database
from interlink.store.schema import rate_buckets

__all__ = ["StoreTokenBucket"]

_KEY_LIMIT = 300
T = TypeVar("T")


class StoreTokenBucket(TokenBuckets):
    """Token buckets in the ``rate_buckets`` table of ``db``.

    Args:
        db: the store (PostgreSQL for several processes; SQLite works, serialised).
        rate: default tokens per second.
        burst: default bucket capacity.
        sleep: awaited with each wait.
        wall_clock: epoch seconds; buckets refill by it, so processes need agreeing clocks.
    """

    def __init__(
        self,
        db: Database,
        rate: float,
        burst: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(rate, burst, sleep=sleep, wall_clock=wall_clock)
        self._db = db
        insert = postgresql.insert if db.is_postgres else sqlite.insert
        self._insert = insert(rate_buckets).on_conflict_do_nothing(
            index_elements=[rate_buckets.c.key]
        )

    async def _update(self, key: str, shape: Limit, apply: Callable[[float], tuple[float, T]]) -> T:
        """Refill ``key``'s bucket, let ``apply`` turn its tokens into new ones, store them."""
        key = key[:_KEY_LIMIT]
        now = self._wall_clock()
        locked = select(rate_buckets.c.tokens, rate_buckets.c.at).where(rate_buckets.c.key == key)
        async with self._db.transaction() as conn:
            row = (await conn.execute(locked.with_for_update())).first()
            if row is None:
                # First use: a full bucket, created by whichever process gets there first.
                await conn.execute(self._insert, {"key": key, "tokens": shape.burst, "at": now})
                row = (await conn.execute(locked.with_for_update())).one()
            tokens = min(shape.burst, row.tokens + max(0.0, now - row.at) * shape.rate)
            tokens, outcome = apply(tokens)
            await conn.execute(
                update(rate_buckets)
                .where(rate_buckets.c.key == key)
                .values(tokens=tokens, at=max(now, row.at))
            )
        return outcome

    async def _reserve(
        self, key: str, cost: float, shape: Limit, max_wait: float | None
    ) -> tuple[bool, float]:
        def take(tokens: float) -> tuple[float, tuple[bool, float]]:
            wait = max(0.0, (cost - tokens) / shape.rate)
            if max_wait is not None and wait > max_wait:
                return tokens, (False, wait)
            return tokens - cost, (True, wait)

        return await self._update(key, shape, take)

    async def _lower(self, key: str, shape: Limit, ceiling: float) -> None:
        await self._update(key, shape, lambda tokens: (min(tokens, ceiling), None))
