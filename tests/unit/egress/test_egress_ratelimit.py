"""LocalTokenBucket on an injected clock, and rate-limit header parsing."""

from __future__ import annotations

import asyncio

import pytest
from multidict import CIMultiDict

from interlink.egress import Limit, LocalTokenBucket, Quota, RateLimited, parse_quota

NOW = 1_700_000_000.0


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def bucket(rate: float, burst: float) -> tuple[LocalTokenBucket, FakeTime]:
    fake = FakeTime()
    return LocalTokenBucket(rate, burst, clock=fake, sleep=fake.sleep, wall_clock=lambda: NOW), fake


async def test_n_requests_take_at_least_n_over_rate_after_the_burst() -> None:
    limiter, fake = bucket(rate=10, burst=5)

    for _ in range(105):
        await limiter.acquire("ep_1")

    assert fake.now == pytest.approx(10.0)


async def test_refill_is_capped_at_burst() -> None:
    limiter, fake = bucket(rate=10, burst=5)
    await limiter.acquire("ep_1")
    fake.now += 3600

    waits = [await limiter.acquire("ep_1") for _ in range(6)]

    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.1)


async def test_concurrent_waiters_are_spaced_by_reservation() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    # Time stands still: all five arrive at once, each reserves the next slot.
    limiter = LocalTokenBucket(rate=4, burst=1, clock=lambda: 0.0, sleep=record)

    waits = await asyncio.gather(*(limiter.acquire("ep_1") for _ in range(5)))

    assert sorted(waits) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert sorted(slept) == pytest.approx([0.25, 0.5, 0.75, 1.0])


async def test_cost_takes_several_tokens() -> None:
    limiter, _ = bucket(rate=1, burst=10)

    assert await limiter.acquire("ep_1", cost=10) == 0.0
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("ep_1", cost=2, max_wait=1)
    assert caught.value.retry_after == pytest.approx(2.0)


async def test_observe_exhausted_quota_waits_for_the_epoch_reset() -> None:
    limiter, fake = bucket(rate=50, burst=50)
    headers = CIMultiDict({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 12)})

    await limiter.observe_headers("con_1", headers)
    waited = await limiter.acquire("con_1")

    assert waited == pytest.approx(12.0)
    assert fake.now == pytest.approx(12.0)


async def test_observe_ignores_unrelated_headers() -> None:
    limiter, _ = bucket(rate=50, burst=50)

    await limiter.observe_headers("con_1", CIMultiDict({"Content-Type": "text/plain"}))

    assert await limiter.acquire("con_1", max_wait=0) == 0.0


async def test_observe_never_raises_the_budget() -> None:
    limiter, _ = bucket(rate=0.001, burst=2)
    await limiter.acquire("con_1")
    await limiter.acquire("con_1")

    await limiter.observe_headers("con_1", CIMultiDict({"RateLimit-Remaining": "500"}))

    with pytest.raises(RateLimited):
        await limiter.acquire("con_1", max_wait=0)


async def test_limit_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limit(rate=0, burst=1)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": str(NOW + 30)}, Quota(10, 30)),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}, Quota(0, 30)),
        ({"x-ratelimit-remaining": "3"}, Quota(3, None)),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "7"}, Quota(0, 7)),
        ({"RateLimit": '"default";r=0;t=30'}, Quota(0, 30)),
        ({"RateLimit": "limit=100, remaining=5, reset=20"}, Quota(5, 20)),
        ({"X-RateLimit-Remaining": "many"}, None),
        ({"X-RateLimit-Remaining": "-1"}, None),
        ({"RateLimit": '"default";q=100'}, None),
        ({}, None),
    ],
)
def test_parse_quota(headers: dict[str, str], expected: Quota | None) -> None:
    assert parse_quota(CIMultiDict(headers), NOW) == expected


async def test_refilled_buckets_are_forgotten_past_max_keys() -> None:
    fake = FakeTime()
    limiter = LocalTokenBucket(1, 1, clock=fake, sleep=fake.sleep, max_keys=2)
    await limiter.acquire("a")
    await limiter.acquire("b")
    fake.now += 0.5
    await limiter.acquire("c")  # a and b are half refilled: kept
    assert len(limiter) == 3
    fake.now += 5

    await limiter.acquire("d")  # a, b, c are full again: forgotten

    assert len(limiter) == 1
    with pytest.raises(RateLimited):
        await limiter.acquire("d", max_wait=0)
