"""What the connections capability keeps per runtime, at ``runtime.state["connections"]``.

One egress client (pool, breakers per provider host, rate limiter) serves every call to a
provider from this process; a short-lived cache holds decrypted connections for the proxy.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from interlink.connections.catalog import Catalog, CatalogError, Provider, load_catalog
from interlink.connections.credentials import ConnectionView
from interlink.connections.events import EventBuffer
from interlink.connections.policies import ProviderPolicy, policy_for
from interlink.egress import (
    AddressPolicy,
    BreakerConfig,
    BreakerRegistry,
    CircuitState,
    EgressClient,
    LocalTokenBucket,
    RateLimiter,
    RedisTokenBucket,
    RequestPolicy,
    Timeouts,
    parse_allow_list,
)
from interlink.observability.metrics import LabelledCounter, LabelledHistogram
from interlink.settings import SettingsError

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["STATE_KEY", "ConnectionsMetrics", "ConnectionsState", "connections_state"]

STATE_KEY = "connections"
PROXY_TIMEOUTS = Timeouts(connect=5.0, read=60.0, total=120.0)


@dataclass(frozen=True)
class ConnectionsMetrics:
    """Prometheus metrics of connections and egress to providers."""

    requests: LabelledCounter
    duration: LabelledHistogram
    refreshes: Counter
    breaker_state: Gauge
    events_dropped: Counter

    @classmethod
    def register(cls, runtime: Runtime) -> ConnectionsMetrics:
        registry = runtime.metrics.registry
        return cls(
            requests=LabelledCounter(
                "interlink_provider_requests",
                "Calls to providers by provider and outcome (status class or error class)",
                ["provider", "outcome"],
                registry,
            ),
            duration=LabelledHistogram(
                "interlink_provider_request_duration_seconds",
                "Time to the provider's response headers, retries included",
                ["provider"],
                registry,
            ),
            refreshes=Counter(
                "interlink_token_refreshes",
                "Token refreshes by provider and outcome",
                ["provider", "outcome"],
                registry=registry,
            ),
            breaker_state=Gauge(
                "interlink_circuit_breaker_open",
                "1 while the circuit breaker of a provider host is open or half-open",
                ["host"],
                registry=registry,
            ),
            events_dropped=Counter(
                "interlink_connections_events_dropped",
                "Buffered events dropped because the buffer was full",
                registry=registry,
            ),
        )


@dataclass
class PassiveHealth:
    """Outcomes of the recent calls to one provider (this process)."""

    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=500))

    def add(self, failed: bool) -> None:
        self.outcomes.append((time.monotonic(), failed))

    def error_rate(self, window: float = 300.0) -> tuple[int, float]:
        """Calls in the last ``window`` seconds and the share that failed."""
        since = time.monotonic() - window
        recent = [failed for at, failed in self.outcomes if at >= since]
        return len(recent), (sum(recent) / len(recent) if recent else 0.0)


@dataclass
class ConnectionsState:
    """Catalog, egress client, caches, in-flight refreshes and the event buffer."""

    runtime: Runtime
    catalog: Catalog
    egress: EgressClient
    breakers: BreakerRegistry
    limiter: RateLimiter
    events: EventBuffer
    metrics: ConnectionsMetrics
    owner: str
    cache_ttl: float = 5.0
    max_rate_limit_wait: float = 10.0
    refresh_margin: float = 900.0
    refresh_wait: float = 20.0
    lease_seconds: float = 30.0
    probe_interval: float = 300.0
    cache: dict[str, tuple[ConnectionView, float]] = field(default_factory=dict)
    passive: dict[str, PassiveHealth] = field(default_factory=dict)
    provider_hosts: dict[str, str] = field(default_factory=dict)
    policies: dict[str, ProviderPolicy] = field(default_factory=dict)
    request_policies: dict[tuple[str, str | None], RequestPolicy] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    # What the limiter holds open (a Redis client), closed when the capability stops.
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    def cached(self, connection_id: str) -> ConnectionView | None:
        entry = self.cache.get(connection_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def remember(self, view: ConnectionView) -> None:
        if len(self.cache) > 50_000:
            self.cache.clear()
        self.cache[view.id] = (view, time.monotonic() + self.cache_ttl)

    def forget(self, connection_id: str) -> None:
        self.cache.pop(connection_id, None)

    def passive_for(self, provider: str) -> PassiveHealth:
        health = self.passive.get(provider)
        if health is None:
            health = self.passive[provider] = PassiveHealth()
        return health

    def use_catalog(self, catalog: Catalog) -> None:
        """Swap the catalog (tests and ``--demo`` point providers at simulators)."""
        self.catalog = catalog
        self.cache.clear()
        self.policies.clear()
        self.request_policies.clear()

    def policy(self, provider: Provider) -> ProviderPolicy:
        """The egress policy of ``provider``, derived once from the catalog."""
        found = self.policies.get(provider.name)
        if found is None:
            found = self.policies[provider.name] = policy_for(provider)
        return found

    def request_policy(self, view: ConnectionView, policy: ProviderPolicy) -> RequestPolicy:
        """What egress applies to one call with ``view``, ``policy`` being its provider's: one
        object per provider, or per connection where the provider limits each connection
        (kept, 50,000 at most)."""
        limited = policy.connection_limit is not None
        key = (view.provider_name, view.id if limited else None)
        found = self.request_policies.get(key)
        if found is None:
            if len(self.request_policies) >= 50_000:
                self.request_policies.clear()
            found = self.request_policies[key] = RequestPolicy(
                retry=policy.retry,
                rate_limit_key=f"connection:{view.id}" if limited else None,
                rate_limit=policy.connection_limit,
                max_rate_limit_wait=self.max_rate_limit_wait,
            )
        return found


def _load_catalog(runtime: Runtime) -> Catalog:
    """The catalog with the user's files and origin overrides from the settings."""
    settings = runtime.settings
    try:
        catalog = load_catalog([Path(p) for p in settings.providers_path])
    except CatalogError as error:
        # A setting's mistake: `interlink serve` says it in one line, not in a traceback.
        raise SettingsError(f"INTERLINK_PROVIDERS_PATH: {'; '.join(error.problems)}") from error
    overrides = settings.provider_origin_overrides
    return catalog.with_overrides(overrides) if overrides else catalog


def _limiter(runtime: Runtime) -> tuple[RateLimiter, Callable[[], Awaitable[Any]] | None]:
    """Buckets shared by every process: through Redis when configured, else through the store
    on PostgreSQL (several processes may share it), else in this process (the embedded store
    has one process, whose workers all share these buckets).

    Every call names its bucket shape; the defaults below only apply to unnamed shapes.
    Returns the limiter and what closes the client it opened, if any.
    """
    redis_url = runtime.settings.redis_url
    if redis_url:
        from redis.asyncio import Redis

        client = Redis.from_url(str(redis_url))
        return RedisTokenBucket(client, rate=1e6, burst=1e6), client.aclose
    if runtime.db.is_postgres:
        from interlink.egress.ratelimit_store import StoreTokenBucket

        return StoreTokenBucket(runtime.db, rate=1e6, burst=1e6), None
    return LocalTokenBucket(rate=1_000_000.0, burst=1_000_000.0), None


def _build(runtime: Runtime) -> ConnectionsState:
    metrics = ConnectionsMetrics.register(runtime)
    events = EventBuffer(runtime, dropped=metrics.events_dropped)

    def on_breaker(host: str, old: CircuitState, new: CircuitState) -> None:
        metrics.breaker_state.labels(host).set(0 if new is CircuitState.CLOSED else 1)
        if new is CircuitState.OPEN and old is not CircuitState.OPEN:
            events.add("circuit_breaker.opened", {"host": host, "from": old.value}, tenant_id=None)
        elif new is CircuitState.CLOSED:
            events.add("circuit_breaker.closed", {"host": host, "from": old.value}, tenant_id=None)

    breakers = BreakerRegistry(BreakerConfig(), on_state_change=on_breaker)
    limiter, close_limiter = _limiter(runtime)
    egress = EgressClient(
        address_policy=AddressPolicy(allow=parse_allow_list(runtime.settings.egress_allow)),
        timeouts=PROXY_TIMEOUTS,
        limit=0,
        breakers=breakers,
        rate_limiter=limiter,
        max_body_bytes=16 << 20,
        user_agent="Interlink/1.0",
    )
    owner = f"{socket.gethostname()}:{os.getpid()}:{id(runtime):x}"[:80]
    return ConnectionsState(
        runtime=runtime,
        catalog=_load_catalog(runtime),
        egress=egress,
        breakers=breakers,
        limiter=limiter,
        events=events,
        metrics=metrics,
        owner=owner,
        closers=[close_limiter] if close_limiter else [],
    )


def connections_state(runtime: Runtime) -> ConnectionsState:
    """The runtime's connections state, built on first use."""
    state = runtime.state.get(STATE_KEY)
    if state is None:
        state = runtime.state[STATE_KEY] = _build(runtime)
    assert isinstance(state, ConnectionsState)
    return state
