"""Egress: the one resilient HTTP layer for everything that leaves the process.

Egress owns outbound HTTP for webhook delivery, the authenticated proxy and connectors:

* the `Egress` port and its adapters: `EgressClient` (pooled, kept-alive connections;
  redirects never followed; connect/read/total timeouts; mutual TLS from PEM strings; full
  responses through aiohttp, streamed ones through the lean `interlink.egress.http1` pool)
  and `InMemoryEgress` (for tests: a handler answers, requests are recorded).
* the SSRF guard (`AddressPolicy`, `GuardedResolver`) - private, loopback, link-local,
  metadata and other special addresses are refused when a URL is configured *and* when a
  connection is opened, so DNS rebinding fails; ``INTERLINK_EGRESS_ALLOW`` networks override.
* resilience as per-call policy objects - `RetryPolicy`, `CircuitBreaker` (per host, held
  by a `BreakerRegistry` instance), `RateLimiter` (`LocalTokenBucket`, `RedisTokenBucket`).
* the error tree in `interlink.egress.errors`; aiohttp exceptions never leave this package.

Egress is a leaf: it imports nothing else from Interlink. Store-backed pieces (events on
breaker transitions, per-endpoint limits) plug in through hooks and the `RateLimiter`
protocol.

Example:
    >>> policy = AddressPolicy(allow=parse_allow_list(settings.egress_allow))
    >>> async with EgressClient(address_policy=policy) as client:
    ...     response = await client.request("POST", url, headers=headers, body=body)
"""

from __future__ import annotations

from interlink.egress.breaker import (
    BreakerConfig,
    BreakerRegistry,
    CircuitBreaker,
    CircuitState,
    StateChangeHook,
    is_host_failure,
)
from interlink.egress.client import EgressClient
from interlink.egress.errors import (
    BlockedDestination,
    CircuitOpen,
    ConnectionFailed,
    ConnectionRefused,
    ConnectTimeout,
    DNSError,
    EgressError,
    EgressTimeout,
    InvalidRequest,
    InvalidURL,
    RateLimited,
    ReadTimeout,
    TLSError,
    TotalTimeout,
)
from interlink.egress.memory import InMemoryEgress, RecordedRequest, StaticResolver, make_response
from interlink.egress.port import (
    Body,
    Egress,
    EgressResponse,
    EgressStream,
    RequestPolicy,
    SSLOption,
    Timeouts,
)
from interlink.egress.ratelimit import (
    Limit,
    LocalTokenBucket,
    Quota,
    RateLimiter,
    RedisTokenBucket,
    parse_quota,
)
from interlink.egress.retry import (
    RetryPolicy,
    parse_reset,
    parse_retry_after,
    set_waiting_disabled,
    waiting_disabled,
)
from interlink.egress.ssrf import (
    AddressPolicy,
    GuardedResolver,
    IPAddress,
    IPNetwork,
    parse_allow_list,
    parse_ip_literal,
)
from interlink.egress.tls import ClientCertificate, TLSContextCache, build_ssl_context

__all__ = [
    "AddressPolicy",
    "BlockedDestination",
    "Body",
    "BreakerConfig",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "ClientCertificate",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionRefused",
    "DNSError",
    "Egress",
    "EgressClient",
    "EgressError",
    "EgressResponse",
    "EgressStream",
    "EgressTimeout",
    "GuardedResolver",
    "IPAddress",
    "IPNetwork",
    "InMemoryEgress",
    "InvalidRequest",
    "InvalidURL",
    "Limit",
    "LocalTokenBucket",
    "Quota",
    "RateLimited",
    "RateLimiter",
    "ReadTimeout",
    "RecordedRequest",
    "RedisTokenBucket",
    "RequestPolicy",
    "RetryPolicy",
    "SSLOption",
    "StateChangeHook",
    "StaticResolver",
    "TLSContextCache",
    "TLSError",
    "Timeouts",
    "TotalTimeout",
    "build_ssl_context",
    "is_host_failure",
    "make_response",
    "parse_allow_list",
    "parse_ip_literal",
    "parse_quota",
    "parse_reset",
    "parse_retry_after",
    "set_waiting_disabled",
    "waiting_disabled",
]


def _adapters_implement_the_port(client: EgressClient, memory: InMemoryEgress) -> list[Egress]:
    # Checked by mypy: both adapters must satisfy the `Egress` protocol.
    return [client, memory]
