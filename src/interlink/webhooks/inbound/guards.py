"""Guards of the ingest route: per-source rate limits, sampling of rejected requests, redaction.

Both limiters are token buckets held in this process's memory. With several ``interlink serve``
processes behind a load balancer each enforces the limit on its own share of the traffic, so the
effective limit is the configured one times the number of processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["REDACTED", "RateLimiter", "RejectionSampler", "redact_headers"]

REDACTED = "[redacted]"
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
_SECRET_WORDS = ("signature", "secret", "hmac", "password", "token", "apikey", "api-key")
_NOT_SECRET = frozenset({"i-twilio-idempotency-token"})
_MAX_HEADER_VALUE = 4000


@lru_cache(maxsize=4096)
def _is_secret(name: str) -> bool:
    return name in _SECRET_HEADERS or (
        name not in _NOT_SECRET and any(word in name for word in _SECRET_WORDS)
    )


def redact_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers as stored in the log: lower-case names, credentials and signatures redacted."""
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("latin-1").lower()
        if name in headers:
            continue
        if _is_secret(name):
            value = REDACTED
        else:
            value = value_bytes.decode("latin-1")
            if "\x00" in value:
                value = value.replace("\x00", "")
            value = value[:_MAX_HEADER_VALUE]
        headers[name.replace("\x00", "") if "\x00" in name else name] = value
    return headers


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key: ``rate`` tokens a second up to ``burst``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def acquire(self, key: str, rate: float, burst: int) -> float:
        """Take a token; return 0 when granted, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        else:
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)


class RejectionSampler:
    """Decides which rejected requests are written to the log, so a flood cannot fill the disk.

    Up to ``per_second`` rejected requests a second per source (bursts of ``burst``) are
    written; the others are only counted, and the next one written carries that count
    (``suppressed_before``). Every rejection is still answered and counted in the metrics.
    """

    def __init__(
        self,
        per_second: float = 5.0,
        burst: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = RateLimiter(clock)
        self._per_second = per_second
        self._burst = burst
        self._suppressed: dict[str, int] = {}

    def admit(self, source_id: str) -> int | None:
        """None: do not write this one; else write it, with this many suppressed before it."""
        if self._limiter.acquire(source_id, self._per_second, self._burst) > 0:
            self._suppressed[source_id] = self._suppressed.get(source_id, 0) + 1
            return None
        return self._suppressed.pop(source_id, 0)
