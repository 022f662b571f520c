"""Prometheus metrics, held by one registry per runtime (never the global default registry)."""

from __future__ import annotations

import weakref
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "labelled"]

M = TypeVar("M", Counter, Gauge, Histogram)
_children: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], Any]] = weakref.WeakKeyDictionary()


def labelled(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, looked up once: ``labels`` validates its arguments on every
    call, which costs more than the increment itself on a hot path."""
    children = _children.get(metric)
    if children is None:
        children = _children[metric] = {}
    child = children.get(values)
    if child is None:
        child = children[values] = metric.labels(*values)
    return child


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "interlink_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "interlink_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs_claimed = Counter(
            "interlink_jobs_claimed", "Jobs claimed by this process", ["kind"], registry=r
        )
        self.jobs_succeeded = Counter(
            "interlink_jobs_succeeded", "Jobs completed by this process", ["kind"], registry=r
        )
        self.jobs_failed = Counter(
            "interlink_jobs_failed",
            "Job attempts that failed in this process",
            ["kind"],
            registry=r,
        )
        self.jobs_dead = Counter(
            "interlink_jobs_dead", "Jobs buried by this process", ["kind"], registry=r
        )
        self.job_claim_lag = Histogram(
            "interlink_job_claim_lag_seconds",
            "Time from a job being due to being claimed",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.job_duration = Histogram(
            "interlink_job_duration_seconds",
            "Time a job handler ran",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "interlink_queue_jobs",
            "Jobs in the store by kind and status",
            ["kind", "status"],
            registry=r,
        )
        self.queue_lag = Gauge(
            "interlink_queue_lag_seconds", "Age of the oldest due, unclaimed job", registry=r
        )
        self.events_relayed = Counter(
            "interlink_events_relayed",
            "Outbox events relayed (each handed to the subscribers that take it)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
