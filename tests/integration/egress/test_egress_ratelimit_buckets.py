"""The same behaviour from every token bucket: in-process, shared through Redis, and shared
through the store (SQLite and PostgreSQL).

The Redis cases need Redis on 127.0.0.1:6379 and the PostgreSQL ones PostgreSQL on :5432. With
CI=true they fail when it is missing; elsewhere they are skipped with the reason shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from interlink.egress import Limit, LocalTokenBucket, RateLimited, RateLimiter, RedisTokenBucket
from interlink.egress.ratelimit_store import StoreTokenBucket
from interlink.runtime import Runtime
from tests.conftest import fresh_pg_database, make_settings


@dataclass
class Bucket:
    limiter: RateLimiter
    clock: Callable[[], float]
    key: str


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def _connect_redis() -> aioredis.Redis:
    client = aioredis.Redis(host="127.0.0.1", port=6379)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Redis is not reachable on 127.0.0.1:6379: {exc}")
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379 ({exc}); CI=true makes this fail")
    return client


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = await _connect_redis()
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def _store(url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(make_settings(url), capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture(
    params=["local", pytest.param("redis", marks=pytest.mark.redis), "store-sqlite", "store-pg"]
)
async def make_bucket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Bucket]]:
    """Factory ``make_bucket(rate, burst)``; local and store buckets run on a fake clock."""
    prefix = f"test:{uuid.uuid4().hex}:"
    client = await _connect_redis() if request.param == "redis" else None
    async with contextlib.AsyncExitStack() as stack:
        runtime = None
        if request.param == "store-sqlite":
            runtime = await stack.enter_async_context(_store(f"sqlite:///{tmp_path}/b.db"))
        elif request.param == "store-pg":
            url = stack.enter_context(fresh_pg_database())
            runtime = await stack.enter_async_context(_store(url))

        def make(rate: float, burst: float) -> Bucket:
            fake = FakeTime()
            if runtime is not None:
                limiter: RateLimiter = StoreTokenBucket(
                    runtime.db, rate, burst, wall_clock=fake, sleep=fake.sleep
                )
                return Bucket(limiter, fake, "connection:con_1")
            if client is None:
                limiter = LocalTokenBucket(rate, burst, clock=fake, sleep=fake.sleep)
                return Bucket(limiter, fake, "endpoint:ep_1")
            limiter = RedisTokenBucket(client, rate, burst, prefix=prefix)
            return Bucket(limiter, time.monotonic, "ep_1")

        yield make
    if client is not None:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_requests_stay_under_the_rate(make_bucket) -> None:
    bucket = make_bucket(rate=40, burst=4)
    started = bucket.clock()
    granted = []

    for _ in range(24):
        await bucket.limiter.acquire(bucket.key)
        granted.append(bucket.clock() - started)

    # 4 at once from the burst, then one every 25 ms: the 24th after (24 - 4) / 40 s.
    assert granted[-1] >= 0.5 - 0.01
    for i, at in enumerate(granted):
        in_window = sum(1 for other in granted[i:] if other - at < 0.25)
        assert in_window <= 4 + 0.25 * 40 + 1


async def test_burst_is_granted_without_waiting(make_bucket) -> None:
    bucket = make_bucket(rate=1, burst=5)

    waits = [await bucket.limiter.acquire(bucket.key) for _ in range(5)]

    assert waits == [0.0] * 5


async def test_max_wait_refuses_without_taking_tokens(make_bucket) -> None:
    bucket = make_bucket(rate=2, burst=1)
    started = bucket.clock()
    await bucket.limiter.acquire(bucket.key)

    with pytest.raises(RateLimited) as caught:
        await bucket.limiter.acquire(bucket.key, max_wait=0.01)
    # Redis's bucket runs on real time: the next token is 0.5 s after the first call, less
    # however long the calls took (none of the others' fake time).
    spent = bucket.clock() - started
    waited = await bucket.limiter.acquire(bucket.key, max_wait=1.0)

    assert 0.5 - spent - 0.02 <= caught.value.retry_after <= 0.5 + 0.02
    assert caught.value.key == bucket.key
    assert waited <= 0.5 + 0.01  # the refused call reserved nothing


async def test_keys_have_separate_budgets(make_bucket) -> None:
    bucket = make_bucket(rate=1, burst=1)
    await bucket.limiter.acquire("a")

    assert await bucket.limiter.acquire("b", max_wait=0) == 0.0
    with pytest.raises(RateLimited):
        await bucket.limiter.acquire("a", max_wait=0)


async def test_per_call_limit_overrides_the_default(make_bucket) -> None:
    bucket = make_bucket(rate=1, burst=1)

    for _ in range(3):
        await bucket.limiter.acquire(bucket.key, max_wait=0, limit=Limit(rate=1, burst=3))

    with pytest.raises(RateLimited):
        await bucket.limiter.acquire(bucket.key, max_wait=0, limit=Limit(rate=1, burst=3))


async def test_observed_exhaustion_holds_calls_until_the_reset(make_bucket) -> None:
    bucket = make_bucket(rate=100, burst=100)
    await bucket.limiter.acquire(bucket.key)

    started = bucket.clock()
    await bucket.limiter.observe_headers(
        bucket.key, {"RateLimit-Remaining": "0", "RateLimit-Reset": "2"}
    )

    with pytest.raises(RateLimited) as caught:
        await bucket.limiter.acquire(bucket.key, max_wait=0.5)
    spent = bucket.clock() - started  # real time on Redis only
    assert 2.0 - spent - 0.05 <= caught.value.retry_after <= 2.0 + 0.05


async def test_observed_remaining_caps_the_burst(make_bucket) -> None:
    bucket = make_bucket(rate=0.001, burst=50)

    await bucket.limiter.observe_headers(bucket.key, {"X-RateLimit-Remaining": "2"})

    for _ in range(2):
        await bucket.limiter.acquire(bucket.key, max_wait=0)
    with pytest.raises(RateLimited):
        await bucket.limiter.acquire(bucket.key, max_wait=0)


@pytest.mark.redis
async def test_redis_budget_is_shared_between_limiter_instances(redis_client) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    worker_a = RedisTokenBucket(redis_client, rate=0.01, burst=3, prefix=prefix)
    worker_b = RedisTokenBucket(redis_client, rate=0.01, burst=3, prefix=prefix)

    await worker_a.acquire("shared", max_wait=0)
    await worker_b.acquire("shared", max_wait=0)
    await worker_a.acquire("shared", max_wait=0)

    with pytest.raises(RateLimited):
        await worker_b.acquire("shared", max_wait=0)
    await redis_client.delete(prefix + "shared")


async def test_store_budget_is_shared_between_processes_on_postgres() -> None:
    """Two runtimes (as two processes would) on one PostgreSQL database share one budget."""
    with fresh_pg_database() as url:
        async with _store(url) as first, _store(url) as second:
            worker_a = StoreTokenBucket(first.db, rate=0.01, burst=3)
            worker_b = StoreTokenBucket(second.db, rate=0.01, burst=3)

            granted = await asyncio.gather(
                *(worker.acquire("shared", max_wait=0) for worker in (worker_a, worker_b) * 2),
                return_exceptions=True,
            )

            assert sum(1 for outcome in granted if outcome == 0.0) == 3
            assert sum(1 for outcome in granted if isinstance(outcome, RateLimited)) == 1
