"""Retry schedule and per-endpoint backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from interlink.webhooks.outbound.schedule import (
    DEFAULT_RETRY_SCHEDULE,
    EndpointBackoff,
    RetrySchedule,
    is_timeout,
    parse_retry_after,
    should_disable,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEFAULT_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def _exact(text: str = DEFAULT_RETRY_SCHEDULE) -> RetrySchedule:
    return RetrySchedule.parse(text, jitter=0)


def _next(
    schedule: RetrySchedule,
    attempt: int,
    *,
    status: int | None = 500,
    retry_after: str | None = None,
    error_class: str | None = None,
) -> float | None:
    return schedule.next_delay(
        attempt, status=status, retry_after_header=retry_after, error_class=error_class, now=NOW
    )


# --- parsing ----------------------------------------------------------------------------------


def test_default_schedule_parses_to_seconds() -> None:
    schedule = RetrySchedule.parse(DEFAULT_RETRY_SCHEDULE)
    assert schedule.delays == DEFAULT_DELAYS
    assert schedule.jitter == 0.2
    assert schedule.max_attempts == 8


@pytest.mark.parametrize(
    ("text", "delays"),
    [
        ("250ms", (0.25,)),
        ("5s", (5.0,)),
        ("5m", (300.0,)),
        ("2h", (7200.0,)),
        ("1d", (86400.0,)),
        ("1.5s", (1.5,)),
        ("30", (30.0,)),
        (" 5S , 2H ", (5.0, 7200.0)),
        ("5 s", (5.0,)),
        ("0s,1ms", (0.0, 0.001)),
        ("5s,,5m,", (5.0, 300.0)),
    ],
)
def test_parse_units(text: str, delays: tuple[float, ...]) -> None:
    assert RetrySchedule.parse(text).delays == pytest.approx(delays)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5s,5x,30m", r"retry schedule item 2 \('5x'\) is not a duration"),
        ("five", r"item 1 \('five'\)"),
        ("5s,-5m", r"item 2 \('-5m'\)"),
        ("5s,5m,1e3s", r"item 3 \('1e3s'\)"),
        ("5s,h", r"item 2 \('h'\)"),
        ("5s, 1 . 5s", r"item 2 \('1 . 5s'\)"),
        ("5s,99999999999d", r"item 2 \('99999999999d'\) is longer than the longest retry delay"),
        ("30.5d", r"item 1 \('30.5d'\) is longer"),
    ],
)
def test_parse_errors_name_the_bad_item(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrySchedule.parse(text)


def test_a_stored_delay_beyond_the_bound_is_clamped_not_refused() -> None:
    """A schedule stored before the 30-day bound must still deliver: its delivery job had
    failed on every attempt, the next time too far away for a date."""
    assert RetrySchedule.parse("30d").delays == (2_592_000.0,)
    clamped = RetrySchedule.parse("5s,99999999999d", clamp=True, jitter=0)
    assert clamped.delays == (5.0, 2_592_000.0)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    delay = clamped.next_delay(2, status=500, retry_after_header="99999999999",
                               error_class=None, now=now)  # fmt: skip
    assert delay == 2 * 2_592_000.0  # Retry-After may double it, no more
    assert now + timedelta(seconds=delay) == datetime(2027, 1, 24, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", " ", ",,"])
def test_parse_refuses_an_empty_schedule(text: str) -> None:
    with pytest.raises(ValueError, match="at least one delay"):
        RetrySchedule.parse(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delays": (5.0, -1.0)}, "retry delay 2 must be finite and >= 0"),
        ({"delays": (float("inf"),)}, "retry delay 1 must be finite"),
        ({"delays": (5.0,), "jitter": 1.0}, r"jitter must be in \[0, 1\)"),
        ({"delays": (5.0,), "jitter": -0.1}, r"jitter must be in \[0, 1\)"),
        ({"delays": (5.0,), "throttled_min_delay": -1}, "throttled_min_delay must be"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrySchedule(**kwargs)  # type: ignore[arg-type]


# --- delays and jitter ------------------------------------------------------------------------


def test_delays_follow_the_schedule_then_run_out() -> None:
    schedule = _exact()
    assert [schedule.delay_for(n) for n in range(1, 8)] == list(DEFAULT_DELAYS)
    assert schedule.delay_for(8) is None
    assert schedule.delay_for(100) is None
    assert schedule.scheduled_delay(3) == 1800.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_numbers_start_at_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt_number starts at 1"):
        _exact().delay_for(attempt)


@pytest.mark.parametrize("jitter", [0.2, 0.5, 0.05])
def test_jitter_stays_within_bounds_and_spreads(jitter: float) -> None:
    schedule = RetrySchedule.parse("10s,100s", jitter=jitter)
    rng = random.Random(1234)
    draws = [schedule.delay_for(2, rng) for _ in range(5000)]
    values = [value for value in draws if value is not None]
    assert len(values) == 5000
    low, high = 100 * (1 - jitter), 100 * (1 + jitter)
    assert all(low <= value <= high for value in values)
    # The draws use the whole band, not a corner of it.
    spread = high - low
    assert min(values) < low + 0.05 * spread
    assert max(values) > high - 0.05 * spread
    assert abs(sum(values) / len(values) - 100) < 0.05 * spread


def test_jitter_is_reproducible_with_a_seeded_generator() -> None:
    schedule = RetrySchedule.parse("1h")
    first = [schedule.delay_for(1, random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1
    assert first[0] != 3600.0


def test_without_jitter_the_delay_is_exact() -> None:
    assert _exact("1h").delay_for(1, random.Random(1)) == 3600.0


# --- next_delay -------------------------------------------------------------------------------


def test_plain_failure_waits_the_scheduled_delay() -> None:
    assert _next(_exact(), 2) == 300.0


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (2, "10", 300.0),  # below 1x -> 1x
        (2, "0", 300.0),
        (2, "450", 450.0),  # within -> as asked
        (2, "600", 600.0),  # exactly 2x
        (2, "86400", 600.0),  # above 2x -> 2x
        (2, "450.5", 450.5),
        (1, "120", 10.0),
        (2, "soon", 300.0),  # unreadable -> ignored
        (2, "", 300.0),
        (2, "-30", 300.0),
    ],
)
def test_retry_after_seconds_is_clamped_between_1x_and_2x(
    attempt: int, retry_after: str, expected: float
) -> None:
    assert _next(_exact(), attempt, status=503, retry_after=retry_after) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(minutes=7), 420.0),
        (timedelta(hours=3), 600.0),
        (timedelta(seconds=30), 300.0),
        (timedelta(hours=-1), 300.0),
    ],
)
def test_retry_after_http_date_is_clamped_too(offset: timedelta, expected: float) -> None:
    header = format_datetime(NOW + offset, usegmt=True)
    assert header.endswith("GMT")
    assert _next(_exact(), 2, status=503, retry_after=header) == expected


def test_retry_after_clamp_uses_the_jittered_delay() -> None:
    schedule = RetrySchedule.parse(DEFAULT_RETRY_SCHEDULE)
    jittered = schedule.delay_for(2, random.Random(3))
    assert jittered is not None
    delay = schedule.next_delay(
        2,
        status=503,
        retry_after_header="100000",
        error_class=None,
        now=NOW,
        rng=random.Random(3),
    )
    assert delay == 2 * jittered


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, None), (None, "timeout"), (None, "ServerTimeoutError"), (None, "read_timeout")],
)
def test_throttling_or_timeout_waits_at_least_a_minute(
    status: int | None, error_class: str | None
) -> None:
    schedule = _exact()
    assert _next(schedule, 1, status=status, error_class=error_class) == 60.0
    # Later delays are already longer than a minute and are kept.
    assert _next(schedule, 2, status=status, error_class=error_class) == 300.0


def test_429_with_retry_after_keeps_the_minute_floor() -> None:
    schedule = _exact()
    assert _next(schedule, 1, status=429, retry_after="3") == 60.0
    assert _next(schedule, 1, status=429, retry_after="100000") == 60.0
    assert _next(schedule, 3, status=429, retry_after="100000") == 3600.0


def test_other_errors_do_not_get_the_minute_floor() -> None:
    assert _next(_exact(), 1, status=None, error_class="connection_refused") == 5.0
    assert _next(_exact(), 1, status=503) == 5.0


def test_throttled_minimum_is_configurable() -> None:
    schedule = RetrySchedule((5.0,), jitter=0, throttled_min_delay=30)
    assert _next(schedule, 1, status=429) == 30.0


def test_exhausted_schedule_gives_up_whatever_the_endpoint_says() -> None:
    schedule = _exact()
    assert _next(schedule, 7) == 36000.0
    assert _next(schedule, 8) is None
    assert _next(schedule, 8, status=429, retry_after="5") is None
    assert _next(schedule, 8, status=None, error_class="timeout") is None


def test_next_delay_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        _exact().next_delay(
            1,
            status=500,
            retry_after_header=None,
            error_class=None,
            now=datetime(2024, 5, 1, 12, 0),  # noqa: DTZ001
        )


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Wed, 01 May 2024 12:02:00 GMT", NOW) == 120.0
    assert parse_retry_after("Wed, 01 May 2024 12:02:00 -0000", NOW) == 120.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("9" * 400, NOW) is None
    assert parse_retry_after("tomorrow", NOW) is None


def test_is_timeout() -> None:
    assert is_timeout("TimeoutError")
    assert is_timeout("connect_timeout")
    assert not is_timeout("connection_reset")
    assert not is_timeout(None)


# --- endpoint backoff -------------------------------------------------------------------------


def test_endpoint_backoff_doubles_from_base_up_to_the_cap() -> None:
    backoff = EndpointBackoff(base=5, cap=600)
    assert [backoff.delay(n) for n in range(0, 10)] == [
        0.0,
        5.0,
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        320.0,
        600.0,
        600.0,
    ]
    assert backoff.delay(10_000) == 600.0


def test_endpoint_backoff_refuses_negative_failures() -> None:
    with pytest.raises(ValueError, match="consecutive_failures must be >= 0"):
        EndpointBackoff().delay(-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": 0}, "base must be finite and > 0"),
        ({"base": 10, "cap": 5}, r"cap must be finite and >= base \(10\)"),
        ({"disable_after": timedelta(0)}, "disable_after must be positive"),
    ],
)
def test_endpoint_backoff_validates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EndpointBackoff(**kwargs)  # type: ignore[arg-type]


def test_new_messages_wait_out_the_rest_of_the_endpoint_backoff() -> None:
    backoff = EndpointBackoff(base=5, cap=600)
    last_failure = NOW - timedelta(seconds=15)

    def wait(failures: int, last_success: datetime | None = None) -> float:
        return backoff.delay_for_new_message(
            consecutive_failures=failures,
            last_failure_at=last_failure,
            last_success_at=last_success,
            now=NOW,
        )

    assert wait(3) == 5.0  # 20 s backoff, 15 s already passed
    assert wait(8) == 585.0  # capped at 600 s
    assert wait(2) == 0.0  # 10 s backoff already over
    assert wait(0) == 0.0
    assert wait(3, last_success=NOW - timedelta(hours=1)) == 5.0
    assert wait(3, last_success=last_failure) == 0.0
    assert wait(3, last_success=NOW - timedelta(seconds=1)) == 0.0


def test_new_messages_to_an_endpoint_without_failures_go_at_once() -> None:
    assert (
        EndpointBackoff().delay_for_new_message(
            consecutive_failures=4, last_failure_at=None, last_success_at=None, now=NOW
        )
        == 0.0
    )


@pytest.mark.parametrize(
    ("failing_for", "last_success", "expected"),
    [
        (timedelta(days=5), None, True),
        (timedelta(days=5) - timedelta(microseconds=1), None, False),
        (timedelta(days=6), None, True),
        (timedelta(days=6), timedelta(days=7), True),  # success before the failures began
        (timedelta(days=6), timedelta(days=1), False),  # success since
        (timedelta(days=6), timedelta(days=6), False),  # success at the same instant
    ],
)
def test_should_disable_boundaries(
    failing_for: timedelta, last_success: timedelta | None, expected: bool
) -> None:
    first_failure = NOW - failing_for
    last_success_at = None if last_success is None else NOW - last_success
    assert should_disable(first_failure, last_success_at, NOW) is expected
    assert EndpointBackoff().should_disable(first_failure, last_success_at, NOW) is expected


def test_should_disable_needs_a_failure_and_respects_a_custom_window() -> None:
    assert should_disable(None, None, NOW) is False
    assert should_disable(None, NOW - timedelta(days=30), NOW) is False
    first_failure = NOW - timedelta(hours=2)
    assert should_disable(first_failure, None, NOW, disable_after=timedelta(hours=2)) is True
    assert should_disable(first_failure, None, NOW, disable_after=timedelta(hours=3)) is False
    backoff = EndpointBackoff(disable_after=timedelta(hours=1))
    assert backoff.should_disable(first_failure, None, NOW) is True


def test_should_disable_refuses_naive_datetimes() -> None:
    naive = datetime(2024, 5, 1, 12, 0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="first_failure_at must be timezone-aware"):
        should_disable(naive, None, NOW)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        should_disable(NOW, None, naive)
