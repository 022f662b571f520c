"""Client-side rate limiting: token buckets per key, local or shared through Redis.

A `RateLimiter` spaces out calls to one key (an endpoint, a connection, a provider
account) so we stay under the destination's limit instead of collecting 429s. Waiting is
*reserved*: a caller that must wait takes its tokens now (the bucket goes negative) and
sleeps, so concurrent callers queue up fairly without re-checking. A caller that would wait
longer than ``max_wait`` takes nothing and gets `RateLimited` with ``retry_after``.

`LocalTokenBucket` keeps buckets in this process; `RedisTokenBucket` keeps them in Redis,
updated atomically by a Lua script using Redis's clock, so every worker and process shares
one budget. `observe_headers` folds what the provider says is left (``X-RateLimit-*``,
IETF ``RateLimit-*`` / ``RateLimit``) into the bucket, so we slow down before the provider
starts answering 429.
"""

from __future__ import annotations

import abc
import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from interlink.egress.errors import RateLimited
from interlink.egress.retry import parse_reset

if TYPE_CHECKING:  # redis is needed only by whoever builds a RedisTokenBucket
    from redis.asyncio import Redis

__all__ = [
    "Limit",
    "LocalTokenBucket",
    "Quota",
    "RateLimiter",
    "RedisTokenBucket",
    "TokenBuckets",
    "parse_quota",
]


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket's shape: `rate` tokens per second, at most `burst` saved up."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst > 0):
            raise ValueError("rate and burst must be positive")


@dataclass(frozen=True, slots=True)
class Quota:
    """What a provider says is left: `remaining` calls until the window resets in `reset` s."""

    remaining: float
    reset: float | None


class RateLimiter(Protocol):
    """Port for client-side rate limiters."""

    async def acquire(
        self,
        key: str,
        cost: float = 1.0,
        *,
        max_wait: float | None = None,
        limit: Limit | None = None,
    ) -> float:
        """Take `cost` tokens from `key`'s bucket, waiting if needed.

        Args:
            key: whose budget (e.g. ``endpoint:ep_123``).
            cost: tokens this call takes.
            max_wait: longest acceptable wait in seconds (None: no bound).
            limit: the bucket's shape for this key (default: the limiter's).

        Returns:
            Seconds waited.

        Raises:
            RateLimited: the wait would exceed `max_wait`; nothing was taken.
        """
        ...

    async def observe_headers(
        self, key: str, headers: Mapping[str, str], *, limit: Limit | None = None
    ) -> None:
        """Lower `key`'s bucket to what the provider's rate-limit headers say is left."""
        ...


_STRUCTURED_PARAM = re.compile(r"(?:^|[;,\s])(r|t|remaining|reset)\s*=\s*([0-9.]+)", re.I)
_PARAM_NAMES = {"r": "r", "remaining": "r", "t": "t", "reset": "t"}


def parse_quota(headers: Mapping[str, str], now: float) -> Quota | None:
    """Read a provider's remaining quota from its response headers.

    Understands ``X-RateLimit-Remaining`` with ``X-RateLimit-Reset`` (epoch or delta
    seconds, detected), ``RateLimit-Remaining`` with ``RateLimit-Reset`` (IETF draft,
    delta seconds) and the structured ``RateLimit: "default";r=0;t=30`` form (also the
    older ``remaining=0, reset=30`` spelling).

    Args:
        headers: response headers (case-insensitive mapping).
        now: wall-clock epoch seconds, for epoch reset values.

    Returns:
        The quota, or None when the headers say nothing readable.
    """
    for prefix in ("X-RateLimit-", "RateLimit-"):
        remaining = headers.get(prefix + "Remaining")
        if remaining is not None:
            count = _number(remaining)
            if count is not None:
                reset_text = headers.get(prefix + "Reset")
                reset = None if reset_text is None else parse_reset(reset_text, now)
                return Quota(count, reset)
    combined = headers.get("RateLimit")
    if combined is not None:
        params = {
            _PARAM_NAMES[name.lower()]: value for name, value in _STRUCTURED_PARAM.findall(combined)
        }
        count = _number(params.get("r", ""))
        if count is not None:
            return Quota(count, _number(params.get("t", "")))
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _ceiling_after(quota: Quota, rate: float) -> float:
    """Most tokens the bucket may hold now, given the provider's quota."""
    if quota.remaining >= 1 or quota.reset is None:
        return quota.remaining
    # Nothing left: the next call may start when the provider's window resets.
    return 1.0 - rate * quota.reset


class TokenBuckets(abc.ABC):
    """What both adapters share: reserve-then-sleep, and folding quota headers into a bucket.

    Subclasses keep the buckets; they only take tokens (`_reserve`) and cap them (`_lower`).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        sleep: Callable[[float], Awaitable[None]],
        wall_clock: Callable[[], float],
    ) -> None:
        self.limit = Limit(rate, burst)
        self._sleep = sleep
        self._wall_clock = wall_clock

    async def acquire(
        self,
        key: str,
        cost: float = 1.0,
        *,
        max_wait: float | None = None,
        limit: Limit | None = None,
    ) -> float:
        """See `RateLimiter.acquire`."""
        granted, wait = await self._reserve(key, cost, limit or self.limit, max_wait)
        if not granted:
            raise RateLimited(key, wait)
        if wait > 0:
            await self._sleep(wait)
        return wait

    async def observe_headers(
        self, key: str, headers: Mapping[str, str], *, limit: Limit | None = None
    ) -> None:
        """See `RateLimiter.observe_headers`."""
        quota = parse_quota(headers, self._wall_clock())
        if quota is None:
            return
        shape = limit or self.limit
        await self._lower(key, shape, _ceiling_after(quota, shape.rate))

    @abc.abstractmethod
    async def _reserve(
        self, key: str, cost: float, shape: Limit, max_wait: float | None
    ) -> tuple[bool, float]:
        """Take `cost` tokens unless the wait would exceed `max_wait`: (taken, wait)."""

    @abc.abstractmethod
    async def _lower(self, key: str, shape: Limit, ceiling: float) -> None:
        """Cap `key`'s tokens at `ceiling`."""


class LocalTokenBucket(TokenBuckets):
    """In-process token buckets, one per key.

    Args:
        rate: default tokens per second.
        burst: default bucket capacity.
        clock: monotonic seconds (inject a fake in tests).
        sleep: awaited with each wait (inject a fake that advances the clock in tests).
        wall_clock: epoch seconds, for epoch reset headers.
        max_keys: past this many keys, buckets that have refilled are forgotten (a full
            bucket is the same as no bucket).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        max_keys: int = 10_000,
    ) -> None:
        super().__init__(rate, burst, sleep=sleep, wall_clock=wall_clock)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, updated_at]
        self._shapes: dict[str, Limit] = {}

    def _refill(self, key: str, limit: Limit) -> list[float]:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full_buckets(now)
            bucket = self._buckets[key] = [limit.burst, now]
            self._shapes[key] = limit
        else:
            bucket[0] = min(limit.burst, bucket[0] + max(0.0, now - bucket[1]) * limit.rate)
            bucket[1] = now
        return bucket

    def _forget_full_buckets(self, now: float) -> None:
        for key, (tokens, updated_at) in list(self._buckets.items()):
            shape = self._shapes[key]
            if tokens + (now - updated_at) * shape.rate >= shape.burst:
                del self._buckets[key], self._shapes[key]

    def __len__(self) -> int:
        return len(self._buckets)

    async def _reserve(
        self, key: str, cost: float, shape: Limit, max_wait: float | None
    ) -> tuple[bool, float]:
        bucket = self._refill(key, shape)
        wait = max(0.0, (cost - bucket[0]) / shape.rate)
        if max_wait is not None and wait > max_wait:
            return False, wait
        bucket[0] -= cost
        return True, wait

    async def _lower(self, key: str, shape: Limit, ceiling: float) -> None:
        bucket = self._refill(key, shape)
        bucket[0] = min(bucket[0], ceiling)


# Both scripts refill from Redis's own clock, so workers on different machines agree.
_REFILL = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
local function store()
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 1) * 1000))
end
"""

_ACQUIRE = (
    _REFILL
    + """
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local wait = 0
if tokens < cost then
  wait = (cost - tokens) / rate
end
if max_wait >= 0 and wait > max_wait then
  return {0, tostring(wait)}
end
tokens = tokens - cost
store()
return {1, tostring(wait)}
"""
)

_OBSERVE = (
    _REFILL
    + """
local ceiling = tonumber(ARGV[3])
if tokens > ceiling then
  tokens = ceiling
end
store()
return 1
"""
)


class RedisTokenBucket(TokenBuckets):
    """Token buckets in Redis, shared by every worker and process using the same keys.

    Args:
        redis: a ``redis.asyncio.Redis`` client (owned by the caller).
        rate: default tokens per second.
        burst: default bucket capacity.
        prefix: prepended to every key in Redis.
        sleep: awaited with each wait.
        wall_clock: epoch seconds, for epoch reset headers.
    """

    def __init__(
        self,
        redis: Redis,
        rate: float,
        burst: float,
        *,
        prefix: str = "interlink:egress:ratelimit:",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(rate, burst, sleep=sleep, wall_clock=wall_clock)
        self._redis = redis
        self._prefix = prefix
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._observe_script = redis.register_script(_OBSERVE)

    async def _reserve(
        self, key: str, cost: float, shape: Limit, max_wait: float | None
    ) -> tuple[bool, float]:
        granted, wait_text = await self._acquire_script(
            keys=[self._prefix + key],
            args=[repr(shape.rate), repr(shape.burst), repr(cost), repr(_unbounded(max_wait))],
        )
        return bool(int(granted)), float(wait_text)

    async def _lower(self, key: str, shape: Limit, ceiling: float) -> None:
        await self._observe_script(
            keys=[self._prefix + key],
            args=[repr(shape.rate), repr(shape.burst), repr(ceiling)],
        )


def _unbounded(max_wait: float | None) -> float:
    return -1.0 if max_wait is None else max_wait
