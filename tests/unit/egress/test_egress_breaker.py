"""CircuitBreaker state machine with an injected clock."""

from __future__ import annotations

import pytest

from interlink.egress import (
    BlockedDestination,
    BreakerConfig,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    ConnectionRefused,
    ConnectTimeout,
    DNSError,
    RateLimited,
    TLSError,
    is_host_failure,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(
    clock: Clock,
    transitions: list[tuple[CircuitState, CircuitState]] | None = None,
    **config: object,
) -> CircuitBreaker:
    defaults: dict[str, object] = {
        "minimum_calls": 4,
        "failure_rate_threshold": 0.5,
        "window_seconds": 10,
        "cool_down": 30,
        "half_open_probes": 2,
    }
    defaults.update(config)
    hook = None
    if transitions is not None:
        hook = lambda host, old, new: transitions.append((old, new))  # noqa: E731
    return CircuitBreaker(
        "api.example", BreakerConfig(**defaults), clock=clock, on_state_change=hook
    )


def call(breaker: CircuitBreaker, failed: bool) -> None:
    breaker.record(breaker.acquire(), failed)


def test_opens_when_failure_rate_reaches_the_threshold() -> None:
    clock = Clock()
    transitions: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, transitions)

    call(breaker, False)
    call(breaker, True)
    call(breaker, False)
    assert breaker.state is CircuitState.CLOSED  # 1 of 3: too few calls to judge
    call(breaker, True)

    assert breaker.state is CircuitState.OPEN
    assert transitions == [(CircuitState.CLOSED, CircuitState.OPEN)]


def test_stays_closed_below_the_threshold() -> None:
    breaker = make(Clock())

    for failed in [False, False, True, False, False, True, False]:
        call(breaker, failed)

    assert breaker.state is CircuitState.CLOSED


def test_minimum_calls_prevents_early_verdicts() -> None:
    breaker = make(Clock(), minimum_calls=5)

    for _ in range(4):
        call(breaker, True)

    assert breaker.state is CircuitState.CLOSED
    call(breaker, True)
    assert breaker.state is CircuitState.OPEN


def test_open_breaker_fails_fast_with_time_until_half_open() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(4):
        call(breaker, True)
    clock.now += 10

    with pytest.raises(CircuitOpen) as caught:
        breaker.acquire()

    assert caught.value.host == "api.example"
    assert caught.value.retry_after == pytest.approx(20)
    assert caught.value.error_class == "circuit_open"


def test_half_opens_after_cool_down_and_closes_after_successful_probes() -> None:
    clock = Clock()
    transitions: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, transitions)
    for _ in range(4):
        call(breaker, True)
    clock.now += 30

    first = breaker.acquire()
    second = breaker.acquire()
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # only two probes at a time
    breaker.record(first, False)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.record(second, False)

    assert breaker.state is CircuitState.CLOSED
    assert transitions == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    call(breaker, True)  # the window starts afresh after closing
    assert breaker.state is CircuitState.CLOSED


def test_a_failed_probe_reopens_for_a_new_cool_down() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(4):
        call(breaker, True)
    clock.now += 30

    call(breaker, True)

    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen) as caught:
        breaker.acquire()
    assert caught.value.retry_after == pytest.approx(30)


def test_probe_without_outcome_frees_its_slot() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=1)
    for _ in range(4):
        call(breaker, True)
    clock.now += 30

    breaker.record(breaker.acquire(), None)  # cancelled probe
    permit = breaker.acquire()

    breaker.record(permit, False)
    assert breaker.state is CircuitState.CLOSED


def test_late_outcomes_from_before_a_transition_are_ignored() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=1)
    slow_call = breaker.acquire()
    for _ in range(4):
        call(breaker, True)
    clock.now += 30
    probe = breaker.acquire()

    breaker.record(slow_call, True)  # admitted while closed, finished now
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.record(probe, False)
    assert breaker.state is CircuitState.CLOSED


def test_time_window_forgets_old_failures() -> None:
    clock = Clock()
    breaker = make(clock, minimum_calls=4, window_seconds=10)

    for _ in range(3):
        call(breaker, True)
    clock.now += 11
    call(breaker, True)

    assert breaker.state is CircuitState.CLOSED


def test_count_window_judges_the_last_n_calls() -> None:
    breaker = make(Clock(), window="count", window_size=4, minimum_calls=4)

    for failed in [True, True, False, False, False, False]:
        call(breaker, failed)
    assert breaker.state is CircuitState.CLOSED  # the two failures fell out
    call(breaker, True)
    call(breaker, True)

    assert breaker.state is CircuitState.OPEN


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (ConnectionRefused("x"), True),
        (ConnectTimeout("x"), True),
        (DNSError("x"), True),
        (TLSError("x"), True),
        (BlockedDestination("10.0.0.1", "10.0.0.0/8", "private"), False),
        (RateLimited("k", 1.0), False),
    ],
)
def test_which_errors_count_against_the_host(error: Exception, counts: bool) -> None:
    assert is_host_failure(error) is counts  # type: ignore[arg-type]


def test_registry_keeps_one_breaker_per_host() -> None:
    clock = Clock()
    registry = BreakerRegistry(BreakerConfig(minimum_calls=1, cool_down=5), clock=clock)

    call(registry.get("a.example"), True)

    assert registry.get("a.example") is registry.get("a.example")
    assert registry.states() == {"a.example": CircuitState.OPEN}
    assert registry.get("b.example").state is CircuitState.CLOSED
    assert {breaker.host for breaker in registry} == {"a.example", "b.example"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"failure_rate_threshold": 0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"window_seconds": 0}, "window_seconds"),
    ],
)
def test_invalid_configs_are_rejected(config: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerConfig(**config)  # type: ignore[arg-type]
