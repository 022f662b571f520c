"""What the inbound capability keeps per runtime, at ``runtime.state["inbound"]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

from interlink.egress import AddressPolicy, EgressClient, Timeouts, parse_allow_list
from interlink.webhooks.inbound.cache import SourceCache
from interlink.webhooks.inbound.guards import RateLimiter, RejectionSampler
from interlink.webhooks.inbound.sources import IngestConfig, load_ingest_config
from interlink.webhooks.inbound.verifiers import VerifierRegistry, default_registry
from interlink.webhooks.inbound.writer import GroupCommitWriter

if TYPE_CHECKING:
    from interlink.runtime import Runtime
    from interlink.webhooks.inbound.hooks import SyncTrigger

__all__ = ["DEFAULT_MAX_BODY_BYTES", "STATE_KEY", "InboundMetrics", "InboundState", "inbound_state"]

STATE_KEY = "inbound"
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_RATE_PER_SECOND = 1000.0
DEFAULT_RATE_BURST = 2000
FORWARD_TIMEOUTS = Timeouts(connect=5.0, read=15.0, total=30.0)


@dataclass(frozen=True)
class InboundMetrics:
    """Prometheus metrics of the inbound path."""

    requests: Counter
    batch_size: Histogram

    @classmethod
    def register(cls, runtime: Runtime) -> InboundMetrics:
        registry = runtime.metrics.registry
        return cls(
            requests=Counter(
                "interlink_inbound_requests",
                "Requests to /in/{source_id} by provider and outcome",
                ["provider", "outcome"],
                registry=registry,
            ),
            batch_size=Histogram(
                "interlink_inbound_commit_batch_size",
                "Received events committed per group-commit transaction",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                registry=registry,
            ),
        )


@dataclass
class InboundState:
    """Caches, limiters, the group-commit writer, the egress client and the sync triggers."""

    registry: VerifierRegistry
    cache: SourceCache
    writer: GroupCommitWriter
    egress: EgressClient
    metrics: InboundMetrics
    limiter: RateLimiter = field(default_factory=RateLimiter)
    sampler: RejectionSampler = field(default_factory=RejectionSampler)
    sync_triggers: list[SyncTrigger] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_per_second: float = DEFAULT_RATE_PER_SECOND
    rate_burst: int = DEFAULT_RATE_BURST
    _counters: dict[tuple[str, str], Any] = field(default_factory=dict)

    def count(self, provider: str, outcome: str) -> None:
        """Count one request to ``/in/`` (the labelled child is looked up once per pair)."""
        counter = self._counters.get((provider, outcome))
        if counter is None:
            counter = self._counters[provider, outcome] = self.metrics.requests.labels(
                provider, outcome
            )
        counter.inc()


def _build(runtime: Runtime) -> InboundState:
    registry = default_registry()

    async def load(source_id: str) -> IngestConfig | None:
        async with runtime.db.transaction() as conn:
            return await load_ingest_config(conn, runtime.vault, registry, source_id)

    metrics = InboundMetrics.register(runtime)
    writer = GroupCommitWriter(
        runtime.db,
        runtime.queue,
        runtime.outbox,
        on_batch=metrics.batch_size.observe,
    )
    policy = AddressPolicy(allow=parse_allow_list(runtime.settings.egress_allow))
    egress = EgressClient(
        address_policy=policy,
        timeouts=FORWARD_TIMEOUTS,
        max_body_bytes=64 * 1024,
        user_agent="Interlink-Webhooks/1.0",
    )
    return InboundState(
        registry=registry, cache=SourceCache(load), writer=writer, egress=egress, metrics=metrics
    )


def inbound_state(runtime: Runtime) -> InboundState:
    """The runtime's inbound state, built on first use."""
    state = runtime.state.get(STATE_KEY)
    if state is None:
        state = runtime.state[STATE_KEY] = _build(runtime)
    assert isinstance(state, InboundState)
    return state
