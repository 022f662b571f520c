"""Circuit breakers per destination host.

```
CLOSED --(failure rate over the window >= threshold, after minimum_calls)--> OPEN
OPEN --(cool_down elapsed, on the next call)--> HALF_OPEN
HALF_OPEN --(half_open_probes successes)--> CLOSED
HALF_OPEN --(one probe fails)--> OPEN
```

Failures are connection errors, DNS and TLS failures, timeouts and 5xx responses; a 4xx
is the caller's problem, not the host's, and counts as a success. A call admitted by the
breaker gets a permit; its outcome is recorded against that permit, so late outcomes of
calls admitted before a state change are ignored.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from interlink.egress.errors import (
    CircuitOpen,
    ConnectionFailed,
    DNSError,
    EgressError,
    EgressTimeout,
    TLSError,
)

__all__ = [
    "BreakerConfig",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitState",
    "StateChangeHook",
    "is_host_failure",
]


class CircuitState(StrEnum):
    """State of one circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateChangeHook = Callable[[str, CircuitState, CircuitState], None]
"""Called as ``hook(host, old_state, new_state)`` on every transition."""


def is_host_failure(error: EgressError) -> bool:
    """Whether an egress error counts against the destination host's breaker."""
    return isinstance(error, EgressTimeout | ConnectionFailed | DNSError | TLSError)


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """When a breaker opens and how it recovers.

    Args:
        failure_rate_threshold: open when failures / calls in the window reach this (0..1].
        minimum_calls: no verdict before the window holds this many calls.
        window: ``"time"`` (calls in the last `window_seconds`) or ``"count"`` (the last
            `window_size` calls).
        window_seconds: length of the time window.
        window_size: length of the count window.
        cool_down: seconds an open breaker refuses calls before letting probes through.
        half_open_probes: probe calls admitted while half-open; all must succeed to close.
    """

    failure_rate_threshold: float = 0.5
    minimum_calls: int = 10
    window: Literal["time", "count"] = "time"
    window_seconds: float = 30.0
    window_size: int = 100
    cool_down: float = 30.0
    half_open_probes: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.failure_rate_threshold <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1]")
        if self.minimum_calls < 1 or self.window_size < 1 or self.half_open_probes < 1:
            raise ValueError("minimum_calls, window_size and half_open_probes must be >= 1")
        if self.window_seconds <= 0 or self.cool_down < 0:
            raise ValueError("window_seconds must be > 0 and cool_down >= 0")


class _TimeWindow:
    """Calls and failures in the last `seconds`, kept in ten buckets."""

    _BUCKETS = 10

    def __init__(self, seconds: float) -> None:
        self._width = seconds / self._BUCKETS
        self._slots = [[-1, 0, 0] for _ in range(self._BUCKETS)]  # bucket index, calls, failures

    def add(self, now: float, failed: bool) -> None:
        index = int(now / self._width)
        slot = self._slots[index % self._BUCKETS]
        if slot[0] != index:
            slot[0], slot[1], slot[2] = index, 0, 0
        slot[1] += 1
        slot[2] += failed

    def totals(self, now: float) -> tuple[int, int]:
        """Calls and failures in the window ending at ``now``."""
        index = int(now / self._width)
        calls = failures = 0
        for start, slot_calls, slot_failures in self._slots:
            if index - start < self._BUCKETS:
                calls += slot_calls
                failures += slot_failures
        return calls, failures

    def clear(self) -> None:
        for slot in self._slots:
            slot[0], slot[1], slot[2] = -1, 0, 0


class _CountWindow:
    """Outcomes of the last `size` calls."""

    def __init__(self, size: int) -> None:
        self._outcomes: deque[bool] = deque(maxlen=size)
        self._failures = 0

    def add(self, now: float, failed: bool) -> None:
        if len(self._outcomes) == self._outcomes.maxlen:
            self._failures -= self._outcomes[0]
        self._outcomes.append(failed)
        self._failures += failed

    def totals(self, now: float) -> tuple[int, int]:
        """Calls and failures among the last ``size``."""
        return len(self._outcomes), self._failures

    def clear(self) -> None:
        self._outcomes.clear()
        self._failures = 0


class CircuitBreaker:
    """Breaker for one host. Not thread-safe; use it from one event loop.

    Args:
        host: the host key the breaker guards (shown in `CircuitOpen` and the hook).
        config: thresholds and windows.
        clock: monotonic seconds (inject a fake in tests).
        on_state_change: called as ``hook(host, old, new)`` on every transition.

    Example:
        >>> permit = breaker.acquire()  # raises CircuitOpen when open
        >>> breaker.record(permit, failed=response.status >= 500)
    """

    def __init__(
        self,
        host: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateChangeHook | None = None,
    ) -> None:
        self.host = host
        self.config = config or BreakerConfig()
        self._clock = clock
        self._on_state_change = on_state_change
        self._window: _TimeWindow | _CountWindow = (
            _TimeWindow(self.config.window_seconds)
            if self.config.window == "time"
            else _CountWindow(self.config.window_size)
        )
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._probes_admitted = 0
        self._probe_successes = 0

    @property
    def state(self) -> CircuitState:
        """Current state (an open breaker turns half-open only when a call arrives)."""
        return self._state

    def acquire(self) -> int:
        """Admit a call or fail fast.

        Returns:
            A permit to pass to `record` with the call's outcome.

        Raises:
            CircuitOpen: the breaker is open, or half-open with all probe slots taken.
        """
        if self._state is CircuitState.CLOSED:
            return self._generation
        if self._state is CircuitState.OPEN:
            remaining = self._opened_at + self.config.cool_down - self._clock()
            if remaining > 0:
                raise CircuitOpen(self.host, remaining)
            self._transition(CircuitState.HALF_OPEN)
        if self._probes_admitted >= self.config.half_open_probes:
            raise CircuitOpen(self.host, 0.0)
        self._probes_admitted += 1
        return self._generation

    def record(self, permit: int, failed: bool | None) -> None:
        """Record the outcome of a call admitted with `permit`.

        Args:
            permit: what `acquire` returned for this call.
            failed: True for a host failure, False for a success, None when the call ended
                without telling anything about the host (cancelled, refused locally); a
                half-open probe slot is then released.
        """
        if permit != self._generation:
            return
        if self._state is CircuitState.HALF_OPEN:
            if failed is None:
                self._probes_admitted -= 1
            elif failed:
                self._transition(CircuitState.OPEN)
            else:
                self._probe_successes += 1
                if self._probe_successes >= self.config.half_open_probes:
                    self._transition(CircuitState.CLOSED)
            return
        if failed is None or self._state is not CircuitState.CLOSED:
            return
        now = self._clock()
        self._window.add(now, failed)
        if not failed:
            return  # a success never opens the breaker: the window is summed on failures only
        calls, failures = self._window.totals(now)
        if (
            calls >= self.config.minimum_calls
            and failures >= self.config.failure_rate_threshold * calls
        ):
            self._transition(CircuitState.OPEN)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._probes_admitted = 0
        self._probe_successes = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        elif new is CircuitState.CLOSED:
            self._window.clear()
        if self._on_state_change is not None:
            self._on_state_change(self.host, old, new)


class BreakerRegistry:
    """The breakers of one application instance, by host key, created on first use.

    Args:
        config: configuration for breakers created by `get` without their own.
        clock: monotonic seconds shared by all breakers.
        on_state_change: hook shared by all breakers (emit ``circuit_breaker.opened`` /
            ``circuit_breaker.closed`` events from it).
    """

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateChangeHook | None = None,
    ) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._on_state_change = on_state_change
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, host: str, config: BreakerConfig | None = None) -> CircuitBreaker:
        """The breaker for `host`; `config` applies only when it is created now."""
        breaker = self._breakers.get(host)
        if breaker is None:
            breaker = CircuitBreaker(
                host,
                config or self.config,
                clock=self._clock,
                on_state_change=self._on_state_change,
            )
            self._breakers[host] = breaker
        return breaker

    def states(self) -> dict[str, CircuitState]:
        """Current state of every known breaker, by host."""
        return {host: breaker.state for host, breaker in self._breakers.items()}

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(list(self._breakers.values()))
