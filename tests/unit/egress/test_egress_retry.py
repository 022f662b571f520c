"""RetryPolicy decisions, waits and bounds, with injected sleep and clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from interlink.egress import (
    BlockedDestination,
    CircuitOpen,
    ConnectionRefused,
    ReadTimeout,
    RetryPolicy,
    parse_reset,
    parse_retry_after,
    waiting_disabled,
)


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str] = field(default_factory=CIMultiDict)


class FakeTime:
    """Monotonic and wall clocks that move only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes: Reply | Exception) -> tuple[Callable[[int], object], list[int]]:
    calls: list[int] = []

    async def attempt(number: int) -> Reply:
        calls.append(number)
        outcome = outcomes[min(number, len(outcomes)) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt, calls


def policy(fake: FakeTime, **overrides: object) -> RetryPolicy:
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, wall_clock=fake.wall, **overrides)


async def test_retry_after_seconds_sets_the_wait() -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(429, CIMultiDict({"Retry-After": "2"})), Reply(200))

    reply, attempts = await policy(fake).run("GET", None, attempt)

    assert (reply.status, attempts, calls) == (200, 2, [1, 2])
    assert len(fake.sleeps) == 1
    assert fake.sleeps[0] >= 2.0


async def test_retry_after_http_date_sets_the_wait() -> None:
    fake = FakeTime()
    later = formatdate(fake.wall() + 7, usegmt=True)
    attempt, _ = scripted(Reply(503, CIMultiDict({"Retry-After": later})), Reply(200))

    await policy(fake).run("GET", None, attempt)

    assert fake.sleeps[0] == pytest.approx(7.0, abs=1.0)


async def test_reset_header_is_read_on_429_as_epoch_or_delta() -> None:
    fake = FakeTime()
    epoch = str(int(fake.wall()) + 5)
    attempt, _ = scripted(
        Reply(429, CIMultiDict({"X-RateLimit-Reset": epoch})),
        Reply(429, CIMultiDict({"RateLimit-Reset": "3"})),
        Reply(200),
    )

    await policy(fake, max_total=60).run("GET", None, attempt)

    assert fake.sleeps[0] == pytest.approx(5.0, abs=1.0)
    assert fake.sleeps[1] >= 3.0


async def test_reset_header_is_ignored_on_other_statuses() -> None:
    fake = FakeTime()
    far = str(int(fake.wall()) + 3600)
    attempt, _ = scripted(Reply(503, CIMultiDict({"X-RateLimit-Reset": far})), Reply(200))

    await policy(fake, backoff_base=0.5).run("GET", None, attempt)

    assert fake.sleeps[0] <= 0.5


async def test_post_without_idempotency_key_is_not_retried() -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(503), Reply(200))

    reply, attempts = await policy(fake).run("POST", {"Content-Type": "application/json"}, attempt)

    assert (reply.status, attempts, calls, fake.sleeps) == (503, 1, [1], [])


async def test_post_with_idempotency_key_is_retried() -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(503), Reply(200))

    reply, attempts = await policy(fake).run("POST", {"idempotency-key": "abc"}, attempt)

    assert (reply.status, attempts, calls) == (200, 2, [1, 2])


async def test_post_is_not_retried_after_a_timeout_either() -> None:
    fake = FakeTime()
    attempt, calls = scripted(ReadTimeout("slow"), Reply(200))

    with pytest.raises(ReadTimeout) as caught:
        await policy(fake).run("POST", None, attempt)

    assert calls == [1]
    assert caught.value.attempts == 1


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "get"])
async def test_idempotent_methods_are_retried_on_retryable_errors(method: str) -> None:
    fake = FakeTime()
    attempt, calls = scripted(ConnectionRefused("down"), Reply(200))

    reply, attempts = await policy(fake).run(method, None, attempt)

    assert (reply.status, attempts) == (200, 2)


async def test_non_retryable_errors_are_raised_at_once() -> None:
    fake = FakeTime()
    attempt, calls = scripted(BlockedDestination("10.0.0.1", "10.0.0.0/8", "private"))

    with pytest.raises(BlockedDestination):
        await policy(fake).run("GET", None, attempt)

    assert calls == [1]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
async def test_final_statuses_are_returned_at_once(status: int) -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(status), Reply(200))

    reply, attempts = await policy(fake).run("GET", None, attempt)

    assert (reply.status, attempts) == (status, 1)


async def test_attempts_are_bounded() -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(502))

    reply, attempts = await policy(fake, max_attempts=4).run("GET", None, attempt)

    assert (reply.status, attempts, calls) == (502, 4, [1, 2, 3, 4])
    assert len(fake.sleeps) == 3


async def test_errors_after_the_last_attempt_carry_the_count() -> None:
    fake = FakeTime()
    attempt, _ = scripted(ConnectionRefused("down"))

    with pytest.raises(ConnectionRefused) as caught:
        await policy(fake, max_attempts=3).run("GET", None, attempt)

    assert caught.value.attempts == 3


async def test_total_time_is_bounded() -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(503, CIMultiDict({"Retry-After": "4"})))

    reply, attempts = await policy(fake, max_attempts=100, max_total=10).run("GET", None, attempt)

    assert attempts == 3  # waits of 4 s at 0 and 4; a third would end at 12 > 10
    assert sum(fake.sleeps) <= 10
    assert reply.status == 503


async def test_a_retry_after_beyond_the_budget_is_not_waited_for() -> None:
    fake = FakeTime()
    attempt, calls = scripted(Reply(429, CIMultiDict({"Retry-After": "3600"})), Reply(200))

    reply, attempts = await policy(fake, max_total=30).run("GET", None, attempt)

    assert (reply.status, attempts, fake.sleeps) == (429, 1, [])


async def test_circuit_open_is_retried_after_its_half_open_time() -> None:
    fake = FakeTime()
    attempt, _ = scripted(CircuitOpen("api.example", retry_after=5), Reply(200))

    reply, _ = await policy(fake).run("GET", None, attempt)

    assert reply.status == 200
    assert fake.sleeps[0] >= 5


async def test_on_retry_hook_sees_attempt_wait_and_reason() -> None:
    fake = FakeTime()
    seen: list[tuple[int, float, str]] = []
    attempt, _ = scripted(ReadTimeout("slow"), Reply(503), Reply(200))

    async def hook(number: int, wait: float, reason: str) -> None:
        seen.append((number, wait, reason))

    await policy(fake, on_retry=hook).run("GET", None, attempt)

    assert [(n, r) for n, _, r in seen] == [(1, "timeout"), (2, "status 503")]
    assert [w for _, w, _ in seen] == fake.sleeps


async def test_discard_releases_each_retried_response() -> None:
    fake = FakeTime()
    first, second = Reply(503), Reply(200)
    attempt, _ = scripted(first, second)
    discarded: list[Reply] = []

    async def discard(reply: Reply) -> None:
        discarded.append(reply)

    await policy(fake).run("GET", None, attempt, discard)

    assert discarded == [first]


@given(st.integers(min_value=0, max_value=200))
def test_backoff_is_full_jitter_under_the_cap(retry_number: int) -> None:
    retry = RetryPolicy(backoff_base=0.5, backoff_cap=20)

    wait = retry.backoff(retry_number)

    assert 0 <= wait <= min(20, 0.5 * 2**retry_number)


def test_backoff_spreads_over_the_whole_range() -> None:
    retry = RetryPolicy(backoff_base=1, backoff_cap=8)

    waits = [retry.backoff(3) for _ in range(2000)]

    assert min(waits) < 1
    assert max(waits) > 7


async def test_waiting_disabled_skips_real_sleep_but_keeps_decisions() -> None:
    attempt, calls = scripted(Reply(503, CIMultiDict({"Retry-After": "5"})), Reply(200))
    seen: list[float] = []
    retry = RetryPolicy(on_retry=lambda n, wait, reason: seen.append(wait))

    started = time.monotonic()
    with waiting_disabled():
        reply, attempts = await retry.run("GET", None, attempt)

    assert (reply.status, attempts) == (200, 2)
    assert seen
    assert seen[0] >= 5
    assert time.monotonic() - started < 1


async def test_waiting_is_real_outside_the_switch() -> None:
    attempt, _ = scripted(Reply(503, CIMultiDict({"Retry-After": "0.2"})), Reply(200))

    started = time.monotonic()
    await RetryPolicy().run("GET", None, attempt)

    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("inf", None),
        ("", None),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_700_000_000.0) == expected


def test_parse_retry_after_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1_700_000_000.0) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("1700000060", 60.0),
        ("1700000060000", 60.0),
        ("1600000000", 0.0),
        ("x", None),
        ("nan", None),
    ],
)
def test_parse_reset_detects_epoch_or_delta(value: str, expected: float | None) -> None:
    assert parse_reset(value, now=1_700_000_000.0) == expected


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_total=-1)


async def test_waiting_disabled_restores_real_waiting_on_exit() -> None:
    # The module switch must not leak out of the context manager.
    with waiting_disabled():
        pass
    attempt, _ = scripted(Reply(503, CIMultiDict({"Retry-After": "0.05"})), Reply(200))
    started = asyncio.get_running_loop().time()

    await RetryPolicy().run("GET", None, attempt)

    assert asyncio.get_running_loop().time() - started >= 0.05
