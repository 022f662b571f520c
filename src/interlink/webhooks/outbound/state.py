"""What the outbound capability keeps per runtime, at ``runtime.state["outbound"]``.

``OutboundConfig`` holds the knobs (schedule, timeouts, retention, health policy). It is built
from the settings; an embedding application or a test may replace fields with
:func:`configure` before the workers start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from interlink import __version__
from interlink.egress import AddressPolicy, EgressClient, Timeouts, parse_allow_list
from interlink.observability.metrics import LabelledCounter, LabelledHistogram
from interlink.webhooks.outbound.auth import TokenCache
from interlink.webhooks.outbound.schedule import EndpointBackoff, RetrySchedule

if TYPE_CHECKING:
    from interlink.runtime import Runtime
    from interlink.webhooks.outbound.recorder import Recorder
    from interlink.webhooks.outbound.writer import MessageWriter

__all__ = ["OutboundConfig", "OutboundMetrics", "OutboundState", "configure", "outbound_state"]

STATE_KEY = "outbound"
USER_AGENT = f"Interlink/{__version__}"
DEFAULT_TIMEOUT_SECONDS = 15.0
RESPONSE_BODY_BYTES = 16 * 1024


@dataclass(frozen=True)
class OutboundConfig:
    """The outbound knobs.

    Attributes:
        schedule: delays after the immediate first attempt (``INTERLINK_RETRY_SCHEDULE``).
        default_timeout: seconds an endpoint has to answer unless it sets its own.
        max_timeout: the longest timeout allowed; kept below the job lease so that a slow
            endpoint never gets a second concurrent copy of a delivery.
        payload_retention: after this, payloads are purged; the attempts log stays.
        message_retention: after this, messages, their deliveries and attempts are deleted.
        idempotency_window: a repeated message id within this window is the same message.
        backoff: per-endpoint backoff and the continuous-failure period before disabling.
        batch_size: deliveries a worker sends and records in one transaction.
    """

    schedule: RetrySchedule
    default_timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_timeout: float = 20.0
    payload_retention: timedelta = timedelta(days=30)
    message_retention: timedelta = timedelta(days=90)
    idempotency_window: timedelta = timedelta(hours=24)
    backoff: EndpointBackoff = field(default_factory=EndpointBackoff)
    batch_size: int = 100

    @classmethod
    def from_settings(cls, runtime: Runtime) -> OutboundConfig:
        schedule = RetrySchedule.parse(runtime.settings.retry_schedule)
        # Scale the per-endpoint backoff with the schedule (a compressed schedule in tests
        # compresses the backoff too): from its first delay up to ten minutes at most.
        base = max(schedule.delays[0], 0.01)
        cap = max(base, min(600.0, max(schedule.delays)))
        lease = runtime.settings.job_lease_seconds
        return cls(
            schedule=schedule,
            default_timeout=min(DEFAULT_TIMEOUT_SECONDS, lease * 0.6),
            max_timeout=max(1.0, lease * 0.6),
            backoff=EndpointBackoff(base=base, cap=cap),
            payload_retention=timedelta(seconds=runtime.settings.payload_retention_seconds),
            message_retention=timedelta(seconds=runtime.settings.message_retention_seconds),
        )


@dataclass(frozen=True)
class OutboundMetrics:
    """Prometheus metrics of the delivery path."""

    attempts: LabelledCounter
    latency: LabelledHistogram

    @classmethod
    def register(cls, runtime: Runtime) -> OutboundMetrics:
        registry = runtime.metrics.registry
        return cls(
            attempts=LabelledCounter(
                "interlink_outbound_attempts",
                "Outbound webhook delivery attempts by outcome",
                ["outcome"],
                registry,
            ),
            latency=LabelledHistogram(
                "interlink_outbound_attempt_seconds",
                "Duration of outbound webhook delivery attempts",
                [],
                registry,
            ),
        )


@dataclass
class OutboundState:
    """The config, the shared egress client, caches and metrics of one runtime."""

    config: OutboundConfig
    egress: EgressClient
    metrics: OutboundMetrics
    writer: MessageWriter
    recorder: Recorder
    compiled: dict[tuple[str, int], Any] = field(default_factory=dict)
    validators: dict[str, Any] = field(default_factory=dict)
    tokens: TokenCache = field(default_factory=TokenCache)


def _build(runtime: Runtime) -> OutboundState:
    # The writer and recorder use services that need this module: import them late.
    from interlink.webhooks.outbound.recorder import Recorder
    from interlink.webhooks.outbound.writer import MessageWriter

    allow = list(runtime.settings.egress_allow)
    if runtime.settings.demo:  # the demo's endpoint posts to this server (webhooks.demo)
        allow.append("127.0.0.1/32")
    policy = AddressPolicy(allow=parse_allow_list(allow), require_https=True)
    config = OutboundConfig.from_settings(runtime)
    egress = EgressClient(
        address_policy=policy,
        timeouts=Timeouts(connect=10.0, read=config.default_timeout, total=config.default_timeout),
        limit=0,
        keepalive_timeout=30.0,
        max_body_bytes=RESPONSE_BODY_BYTES,
        user_agent=USER_AGENT,
    )
    pg = runtime.db.is_postgres
    return OutboundState(
        config=config,
        egress=egress,
        metrics=OutboundMetrics.register(runtime),
        writer=MessageWriter(runtime),
        recorder=Recorder(runtime, concurrency=4 if pg else 1),
    )


def outbound_state(runtime: Runtime) -> OutboundState:
    """The runtime's outbound state, built on first use."""
    state = runtime.state.get(STATE_KEY)
    if state is None:
        state = runtime.state[STATE_KEY] = _build(runtime)
    assert isinstance(state, OutboundState)
    return state


def configure(runtime: Runtime, **changes: Any) -> OutboundConfig:
    """Replace fields of the runtime's :class:`OutboundConfig` (tests, embedding apps)."""
    state = outbound_state(runtime)
    state.config = replace(state.config, **changes)
    return state.config
