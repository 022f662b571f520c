"""When to try an outbound webhook again: the retry schedule and per-endpoint backoff.

Two policies, both pure (no clock, no I/O: the caller passes ``now`` and a random generator):

:class:`RetrySchedule`
    the delays between the attempts of one message to one endpoint
    (``INTERLINK_RETRY_SCHEDULE``, default ``5s,5m,30m,2h,5h,10h,10h``: eight attempts over
    about 33 hours), with jitter, honouring the endpoint's ``Retry-After`` within bounds and
    slowing down on 429 and timeouts.

:class:`EndpointBackoff`
    how long *new* messages to an endpoint that keeps failing wait before their first attempt,
    so that a dead endpoint is probed now and then rather than hit by every message, and when
    an endpoint that has failed for days should be disabled.

Example (without jitter, to show the figures)::

    schedule = RetrySchedule.parse("5s,5m,30m,2h,5h,10h,10h", jitter=0)
    now = datetime.now(UTC)
    schedule.next_delay(2, status=500, retry_after_header=None, error_class=None, now=now)
    # 300.0: the second item
    schedule.next_delay(1, status=503, retry_after_header="120", error_class=None, now=now)
    # 10.0: Retry-After is honoured, but at most twice the scheduled 5 s
    schedule.next_delay(1, status=429, retry_after_header=None, error_class=None, now=now)
    # 60.0: throttled endpoints get at least a minute
    schedule.next_delay(8, status=500, retry_after_header=None, error_class=None, now=now)
    # None: eight attempts made, the schedule is exhausted
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

from interlink.settings import MAX_RETRY_DELAY_SECONDS

__all__ = [
    "DEFAULT_DISABLE_AFTER",
    "DEFAULT_JITTER",
    "DEFAULT_RETRY_SCHEDULE",
    "THROTTLED_MIN_DELAY_SECONDS",
    "EndpointBackoff",
    "RetrySchedule",
    "is_timeout",
    "parse_retry_after",
    "should_disable",
]

DEFAULT_RETRY_SCHEDULE: Final = "5s,5m,30m,2h,5h,10h,10h"
DEFAULT_JITTER: Final = 0.2
THROTTLED_MIN_DELAY_SECONDS: Final = 60.0
DEFAULT_DISABLE_AFTER: Final = timedelta(days=5)

_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?", re.IGNORECASE)
_HTTP_TOO_MANY_REQUESTS: Final = 429


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def is_timeout(error_class: str | None) -> bool:
    """Whether an attempt's error class names a timeout.

    Any class containing ``timeout`` (case-insensitive) counts: ``timeout``, ``read_timeout``,
    ``ServerTimeoutError``, ``TimeoutError``.
    """
    return error_class is not None and "timeout" in error_class.lower()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Read a ``Retry-After`` header as seconds from ``now``.

    Args:
        value: ``delay-seconds`` (``"120"``; a decimal is tolerated) or an HTTP-date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: the current time, timezone-aware; an HTTP-date is measured from it.

    Returns:
        Seconds to wait, never negative (a date in the past gives 0.0), or None when the header
        is absent or unreadable (an endpoint's bad header is ignored, not an error).
    """
    _require_aware("now", now)
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.replace(".", "", 1).isdigit():
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are GMT; parsedate_to_datetime leaves "-0000" naive.
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _parse_item(item: str, position: int, clamp: bool) -> float:
    match = _DURATION.fullmatch(item.strip())
    if match is None:
        raise ValueError(
            f"retry schedule item {position} ({item.strip()!r}) is not a duration "
            "such as 500ms, 5s, 5m, 2h or 1d"
        )
    number, unit = match.groups()
    seconds = float(number) * _UNIT_SECONDS[(unit or "s").lower()]
    if seconds > MAX_RETRY_DELAY_SECONDS:
        if clamp:
            return MAX_RETRY_DELAY_SECONDS
        raise ValueError(
            f"retry schedule item {position} ({item.strip()!r}) is longer than the longest "
            "retry delay, 30d"
        )
    return seconds


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """The delays between delivery attempts of one message to one endpoint.

    The first attempt is immediate; after attempt ``n`` fails, the next waits ``delays[n - 1]``
    (give or take the jitter), and after attempt ``len(delays) + 1`` fails the message is given
    up for that endpoint.

    Attributes:
        delays: seconds to wait after the 1st, 2nd, ... failed attempt.
        jitter: each delay is multiplied by a uniform factor in ``[1 - jitter, 1 + jitter]``
            so that messages failing together do not come back together; 0 disables it.
        throttled_min_delay: the least wait after a 429 or a timeout, in seconds.

    Raises:
        ValueError: a delay is negative or not finite, or jitter is outside ``[0, 1)``.
    """

    delays: tuple[float, ...]
    jitter: float = DEFAULT_JITTER
    throttled_min_delay: float = THROTTLED_MIN_DELAY_SECONDS

    def __post_init__(self) -> None:
        for position, delay in enumerate(self.delays, start=1):
            if not math.isfinite(delay) or delay < 0:
                raise ValueError(f"retry delay {position} must be finite and >= 0, got {delay}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if not math.isfinite(self.throttled_min_delay) or self.throttled_min_delay < 0:
            raise ValueError(
                f"throttled_min_delay must be finite and >= 0, got {self.throttled_min_delay}"
            )

    @classmethod
    def parse(
        cls, text: str, *, jitter: float = DEFAULT_JITTER, clamp: bool = False
    ) -> RetrySchedule:
        """Build a schedule from comma-separated durations, e.g. ``"5s,5m,30m,2h,5h,10h,10h"``.

        Each item is a number (decimals allowed) with an optional unit ``ms``, ``s``, ``m``,
        ``h`` or ``d`` (no unit means seconds), at most 30 days (``MAX_RETRY_DELAY_SECONDS``);
        case and spaces do not matter, empty items are skipped.

        Args:
            clamp: cut a longer delay to 30 days instead of refusing it: for a schedule stored
                before the bound, which must still deliver.

        Raises:
            ValueError: no delay at all, or an item that is not a duration or is too long; the
                message gives the item and its 1-based position.
        """
        items = [item for item in text.split(",") if item.strip()]
        if not items:
            raise ValueError("a retry schedule needs at least one delay, e.g. 5s,5m,30m")
        delays = tuple(_parse_item(item, position, clamp) for position, item in enumerate(items, 1))
        return cls(delays, jitter=jitter)

    @property
    def max_attempts(self) -> int:
        """How many attempts a message gets in all, the immediate one included."""
        return len(self.delays) + 1

    def scheduled_delay(self, attempt_number: int) -> float | None:
        """The delay after attempt ``attempt_number`` (1-based) failed, without jitter.

        Returns:
            Seconds, or None when that was the last attempt.

        Raises:
            ValueError: ``attempt_number`` is below 1.
        """
        if attempt_number < 1:
            raise ValueError(f"attempt_number starts at 1, got {attempt_number}")
        if attempt_number > len(self.delays):
            return None
        return self.delays[attempt_number - 1]

    def delay_for(self, attempt_number: int, rng: random.Random | None = None) -> float | None:
        """The delay after attempt ``attempt_number`` (1-based) failed, with jitter.

        Args:
            attempt_number: the number of the attempt that just failed; 1 is the first.
            rng: the random generator for the jitter (a seeded ``random.Random`` in tests);
                the ``random`` module's by default.

        Returns:
            Seconds in ``[d * (1 - jitter), d * (1 + jitter)]`` where ``d`` is the scheduled
            delay, or None when the schedule is exhausted.
        """
        delay = self.scheduled_delay(attempt_number)
        if delay is None:
            return None
        if not self.jitter:
            return delay
        factor = (rng or random).uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return delay * factor

    def next_delay(
        self,
        attempt_number: int,
        *,
        status: int | None,
        retry_after_header: str | None,
        error_class: str | None,
        now: datetime,
        rng: random.Random | None = None,
    ) -> float | None:
        """How long to wait before the next attempt, given how this one failed.

        Args:
            attempt_number: the number of the attempt that just failed; 1 is the first.
            status: the response status code, or None when no response came.
            retry_after_header: the response's ``Retry-After`` value, if any.
            error_class: the transport error's class, if any (see :func:`is_timeout`).
            now: the current time, timezone-aware (HTTP-date ``Retry-After`` is relative to it).
            rng: the jitter's random generator, as for :meth:`delay_for`.

        Returns:
            Seconds to wait, or None when the schedule is exhausted (even if the endpoint
            asked for a retry). The value is the jittered scheduled delay ``d``, then:

            1. a readable ``Retry-After`` replaces it, clamped to ``[d, 2 * d]``: the endpoint
               may slow us down, at most twice, and never speed us up;
            2. after a 429 or a timeout it is at least ``throttled_min_delay`` (60 s).

        Example::

            schedule.next_delay(1, status=429, retry_after_header=None,
                                error_class=None, now=now)   # 60.0 rather than ~5 s
        """
        _require_aware("now", now)
        delay = self.delay_for(attempt_number, rng)
        if delay is None:
            return None
        requested = parse_retry_after(retry_after_header, now)
        if requested is not None:
            delay = min(max(requested, delay), 2.0 * delay)
        if status == _HTTP_TOO_MANY_REQUESTS or is_timeout(error_class):
            delay = max(delay, self.throttled_min_delay)
        return delay


def _is_failing(first_failure_at: datetime | None, last_success_at: datetime | None) -> bool:
    return first_failure_at is not None and (
        last_success_at is None or last_success_at < first_failure_at
    )


def should_disable(
    first_failure_at: datetime | None,
    last_success_at: datetime | None,
    now: datetime,
    disable_after: timedelta = DEFAULT_DISABLE_AFTER,
) -> bool:
    """Whether an endpoint has failed without a single success for ``disable_after`` or more.

    Args:
        first_failure_at: when the current run of failures began (None: not failing).
        last_success_at: the last successful delivery, if any; one at or after
            ``first_failure_at`` means the endpoint is not failing continuously.
        now: the current time.
        disable_after: how long a continuous failure is tolerated (default five days).

    Returns:
        True exactly when the endpoint is failing and ``now - first_failure_at >=
        disable_after``.

    Raises:
        ValueError: a datetime is naive, or ``disable_after`` is not positive.
    """
    _require_aware("now", now)
    if disable_after <= timedelta(0):
        raise ValueError(f"disable_after must be positive, got {disable_after}")
    if first_failure_at is None:
        return False
    _require_aware("first_failure_at", first_failure_at)
    if last_success_at is not None:
        _require_aware("last_success_at", last_success_at)
    return _is_failing(first_failure_at, last_success_at) and (
        now - first_failure_at >= disable_after
    )


@dataclass(frozen=True, slots=True)
class EndpointBackoff:
    """Backoff for an endpoint as a whole, from its failure counters.

    While an endpoint fails continuously, each new message's first attempt waits until
    ``last_failure_at + min(cap, base * 2 ** (consecutive_failures - 1))``; one success resets
    the counters and messages flow at once again. Retries of messages already failing keep to
    their own :class:`RetrySchedule`.

    Attributes:
        base: the wait after one failure, in seconds.
        cap: the longest wait, in seconds, so a recovered endpoint is found within ``cap``.
        disable_after: how long an endpoint may fail without a success before it is disabled.

    Example::

        backoff = EndpointBackoff(base=5, cap=600)
        backoff.delay(1), backoff.delay(3), backoff.delay(20)    # 5.0, 20.0, 600.0
    """

    base: float = 5.0
    cap: float = 600.0
    disable_after: timedelta = DEFAULT_DISABLE_AFTER

    def __post_init__(self) -> None:
        if not math.isfinite(self.base) or self.base <= 0:
            raise ValueError(f"base must be finite and > 0, got {self.base}")
        if not math.isfinite(self.cap) or self.cap < self.base:
            raise ValueError(f"cap must be finite and >= base ({self.base}), got {self.cap}")
        if self.disable_after <= timedelta(0):
            raise ValueError(f"disable_after must be positive, got {self.disable_after}")

    def delay(self, consecutive_failures: int) -> float:
        """``min(cap, base * 2 ** (consecutive_failures - 1))``, or 0.0 with no failures.

        Raises:
            ValueError: ``consecutive_failures`` is negative.
        """
        if consecutive_failures < 0:
            raise ValueError(f"consecutive_failures must be >= 0, got {consecutive_failures}")
        if consecutive_failures == 0:
            return 0.0
        # Past 2**60 the cap has long won; skip computing huge powers.
        exponent = min(consecutive_failures - 1, 60)
        return min(self.cap, self.base * 2.0**exponent)

    def delay_for_new_message(
        self,
        *,
        consecutive_failures: int,
        last_failure_at: datetime | None,
        last_success_at: datetime | None,
        now: datetime,
    ) -> float:
        """Seconds a new message to this endpoint should wait before its first attempt.

        Args:
            consecutive_failures: failed attempts since the last success.
            last_failure_at: when the latest failed attempt ended.
            last_success_at: when the latest successful attempt ended, if any.
            now: the current time, timezone-aware.

        Returns:
            0.0 for a healthy endpoint (no failures, or a success since the latest failure);
            otherwise what is left of :meth:`delay` counted from ``last_failure_at``.
        """
        _require_aware("now", now)
        if consecutive_failures <= 0 or last_failure_at is None:
            return 0.0
        _require_aware("last_failure_at", last_failure_at)
        if last_success_at is not None:
            _require_aware("last_success_at", last_success_at)
            if last_success_at >= last_failure_at:
                return 0.0
        resume_at = last_failure_at + timedelta(seconds=self.delay(consecutive_failures))
        return max(0.0, (resume_at - now).total_seconds())

    def should_disable(
        self,
        first_failure_at: datetime | None,
        last_success_at: datetime | None,
        now: datetime,
    ) -> bool:
        """:func:`should_disable` with this policy's ``disable_after``."""
        return should_disable(first_failure_at, last_success_at, now, self.disable_after)
