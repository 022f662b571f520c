"""Egress policies per provider, derived from the catalog's rate-limit and retry hints."""

from __future__ import annotations

from dataclasses import dataclass

from interlink.connections.catalog import LimitHint, Provider
from interlink.egress import Limit, RetryPolicy

__all__ = ["ProviderPolicy", "limit_of", "policy_for"]

# Retrying a proxied call for longer than this holds the caller's request open too long.
MAX_RETRY_SECONDS = 30.0


def limit_of(hint: LimitHint) -> Limit:
    """A token bucket that lets at most ``requests`` through in any ``per_seconds`` window.

    A bucket of size B refilled at rate r admits ``B + r * T`` calls in a window T, so a hint
    without an explicit burst gets ``B = 10 %`` of the budget (at least one call) and the rest
    as rate (a budget of one call per window gets 1 % more, as the rate cannot be zero).
    A hint with a burst (Shopify's leaky bucket) is taken as is.
    """
    if hint.burst is not None:
        return Limit(rate=hint.requests / hint.per_seconds, burst=float(hint.burst))
    burst = max(1.0, hint.requests * 0.1)
    rate = max(hint.requests - burst, hint.requests * 0.01) / hint.per_seconds
    return Limit(rate=rate, burst=burst)


def _strictest(hints: list[LimitHint]) -> Limit | None:
    if not hints:
        return None
    return min((limit_of(hint) for hint in hints), key=lambda limit: limit.rate)


@dataclass(frozen=True, slots=True)
class ProviderPolicy:
    """What egress applies to every call to one provider."""

    retry: RetryPolicy
    connection_limit: Limit | None
    provider_limit: Limit | None
    remaining_header: str | None


def policy_for(provider: Provider, *, max_attempts: int = 3) -> ProviderPolicy:
    """Derive the retry policy and rate limits of ``provider`` from its catalog entry."""
    hints = provider.retry
    reset_headers = tuple(h.name for h in hints.headers if h.name.lower() != "retry-after")
    rate = provider.rate_limit
    if rate is not None and rate.reset_header and rate.reset_header not in reset_headers:
        reset_headers = (*reset_headers, rate.reset_header)
    retry = RetryPolicy(
        max_attempts=max_attempts,
        max_total=MAX_RETRY_SECONDS,
        retry_statuses=frozenset(hints.statuses),
        reset_headers=reset_headers or ("X-RateLimit-Reset", "RateLimit-Reset"),
    )
    limits = list(rate.limits) if rate is not None else []
    return ProviderPolicy(
        retry=retry,
        connection_limit=_strictest([h for h in limits if h.scope == "connection"]),
        provider_limit=_strictest([h for h in limits if h.scope == "provider"]),
        remaining_header=rate.remaining_header if rate is not None else None,
    )
