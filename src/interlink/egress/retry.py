"""Retry policy for one outbound call: bounded in attempts and time, jittered, observable.

A request is retried only when repeating it is safe (an idempotent method, or an
idempotency key header) and the outcome says a later attempt may succeed (a retryable
`EgressError`, or a status such as 429 or 503). Waits use exponential backoff with full
jitter and never undercut what the server asked for (``Retry-After``, rate-limit reset
headers).

Tests: inject ``sleep=`` (and ``clock=``) into a `RetryPolicy`, or switch real waiting off
for the whole process with `set_waiting_disabled` / `waiting_disabled`; the policy then
decides exactly as in production (same waits, same budget, same hook calls) but does not
sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from interlink.egress.errors import CircuitOpen, EgressError, RateLimited

__all__ = [
    "DEFAULT_IDEMPOTENT_METHODS",
    "DEFAULT_RETRY_STATUSES",
    "RetryPolicy",
    "parse_reset",
    "parse_retry_after",
    "set_waiting_disabled",
    "waiting_disabled",
]

DEFAULT_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_waiting_disabled = False


def set_waiting_disabled(disabled: bool) -> None:
    """Process-wide test switch: when True, retries do not actually sleep.

    Policies given their own ``sleep=`` still call it; only the default `asyncio.sleep`
    is skipped. Prefer the `waiting_disabled` context manager in tests.
    """
    global _waiting_disabled
    _waiting_disabled = disabled


@contextmanager
def waiting_disabled() -> Iterator[None]:
    """Context manager form of `set_waiting_disabled` (restores the previous value)."""
    previous = _waiting_disabled
    set_waiting_disabled(True)
    try:
        yield
    finally:
        set_waiting_disabled(previous)


class RetryableOutcome(Protocol):
    """What the policy reads from a response to decide on a retry."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


R = TypeVar("R", bound=RetryableOutcome)


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date).

    Args:
        value: the header value.
        now: current wall-clock time (epoch seconds), for HTTP dates.

    Returns:
        Seconds (never negative), or None when the value is unreadable.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_reset(value: str, now: float) -> float | None:
    """Seconds until a provider's rate-limit window resets, from e.g. ``X-RateLimit-Reset``.

    Providers disagree: some send epoch seconds (GitHub), some epoch milliseconds, some
    seconds from now. Values above 10^12 are read as epoch milliseconds, above 10^9 as epoch
    seconds (10^9 seconds from now would be 31 years), anything smaller as a delta.

    Returns:
        Seconds (never negative), or None when the value is not a number.
    """
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if number > 1e12:
        number /= 1000.0
    if number > 1e9:
        number -= now
    return max(0.0, number)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How one outbound call is retried.

    Args:
        max_attempts: attempts in total, the first included (1 disables retries).
        max_total: seconds from the first attempt after which no retry is started; a
            wait that would end past it is not taken (the last outcome is returned).
        backoff_base: first backoff ceiling in seconds; retry n waits
            ``uniform(0, min(backoff_cap, backoff_base * 2**n))`` (full jitter).
        backoff_cap: upper bound of one backoff ceiling.
        retry_statuses: response statuses worth retrying.
        idempotent_methods: methods that are safe to repeat.
        idempotency_key_headers: a request carrying one of these headers is safe to repeat
            whatever its method.
        reset_headers: headers read on a 429 without ``Retry-After`` for when the
            provider's window resets (epoch or delta seconds, detected).
        on_retry: called before each wait as ``on_retry(attempt, wait, reason)``, where
            `attempt` is the number of the attempt that just failed and `reason` is an
            ``error_class`` or ``"status 503"``; may be a coroutine function.
        sleep: awaited with each wait (default `asyncio.sleep`, unless waiting is disabled
            with `set_waiting_disabled`).
        clock: monotonic clock for the time budget.
        wall_clock: epoch clock for HTTP dates and epoch reset headers.

    Example:
        >>> policy = RetryPolicy(max_attempts=4, max_total=20.0)
        >>> response = await client.request("GET", url, policy=RequestPolicy(retry=policy))
        >>> response.attempts
        1
    """

    max_attempts: int = 3
    max_total: float = 30.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    idempotent_methods: frozenset[str] = DEFAULT_IDEMPOTENT_METHODS
    idempotency_key_headers: tuple[str, ...] = ("Idempotency-Key",)
    reset_headers: tuple[str, ...] = ("X-RateLimit-Reset", "RateLimit-Reset")
    on_retry: Callable[[int, float, str], Awaitable[None] | None] | None = None
    sleep: Callable[[float], Awaitable[None]] | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total < 0 or self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("max_total, backoff_base and backoff_cap must not be negative")

    def allows(self, method: str, headers: Mapping[str, str] | None) -> bool:
        """Whether a request with this method and these headers may be sent twice."""
        if method.upper() in self.idempotent_methods:
            return True
        if not headers:
            return False
        present = {name.lower() for name in headers}
        return any(name.lower() in present for name in self.idempotency_key_headers)

    def backoff(self, retry_number: int) -> float:
        """Full-jitter backoff before retry `retry_number` (0 for the first retry)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** min(retry_number, 62))
        return random.uniform(0.0, ceiling)

    def server_wait(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds the server asked us to wait (``Retry-After``, or reset headers on 429)."""
        now = self.wall_clock()
        retry_after = headers.get("Retry-After")
        if retry_after is not None:
            parsed = parse_retry_after(retry_after, now)
            if parsed is not None:
                return parsed
        if status == 429:
            for name in self.reset_headers:
                value = headers.get(name)
                if value is not None:
                    reset = parse_reset(value, now)
                    if reset is not None:
                        return reset
        return None

    async def run(
        self,
        method: str,
        headers: Mapping[str, str] | None,
        attempt: Callable[[int], Awaitable[R]],
        discard: Callable[[R], Awaitable[None]] | None = None,
    ) -> tuple[R, int]:
        """Make attempts until one is final; return its outcome and the attempt count.

        Args:
            method: the request method (decides idempotency with `headers`).
            headers: the request headers.
            attempt: makes attempt number n (1-based) and returns its response, or raises.
            discard: releases a response that is being retried (e.g. closes a stream).

        Returns:
            The final response and how many attempts were made. A response with a
            retryable status is returned once attempts or time run out.

        Raises:
            EgressError: the last attempt's error, with ``attempts`` set, when it is not
                retryable or attempts or time ran out.
        """
        retry_allowed = self.allows(method, headers)
        started = self.clock()
        number = 0
        while True:
            number += 1
            final = not retry_allowed or number >= self.max_attempts
            try:
                response = await attempt(number)
            except EgressError as exc:
                exc.attempts = number
                if final or not exc.retryable:
                    raise
                hint = exc.retry_after if isinstance(exc, CircuitOpen | RateLimited) else None
                wait = self._wait(number, hint)
                if self.clock() - started + wait > self.max_total:
                    raise
                reason = exc.error_class
            else:
                if final or response.status not in self.retry_statuses:
                    return response, number
                wait = self._wait(number, self.server_wait(response.status, response.headers))
                if self.clock() - started + wait > self.max_total:
                    return response, number
                if discard is not None:
                    await discard(response)
                reason = f"status {response.status}"
            await self._pause(number, wait, reason)

    def _wait(self, number: int, hint: float | None) -> float:
        jittered = self.backoff(number - 1)
        return jittered if hint is None else max(hint, jittered)

    async def _pause(self, number: int, wait: float, reason: str) -> None:
        if self.on_retry is not None:
            result = self.on_retry(number, wait, reason)
            if inspect.isawaitable(result):
                await result
        if self.sleep is not None:
            await self.sleep(wait)
        elif not _waiting_disabled:
            await asyncio.sleep(wait)
        else:
            await asyncio.sleep(0)
