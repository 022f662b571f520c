"""`LabelledCounter` and `LabelledHistogram`: the series prometheus_client's own would expose."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from interlink.observability.metrics import LabelledCounter, LabelledHistogram

BUCKETS = (0.001, 0.005, 0.25, 1, 30, 1_000_000)
AMOUNTS = (0.0005, 0.001, 0.003, 0.2, 0.25, 0.7, 29.0, 31.0, 2_000_000.0)


def _exposition(registry: CollectorRegistry) -> list[str]:
    """The lines of the text format, without ``_created`` (the clock differs between the two)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_counters_expose_what_prometheus_client_exposes() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = LabelledCounter("calls", "Calls made", ["provider", "outcome"], ours)
    reference = Counter("calls", "Calls made", ["provider", "outcome"], registry=theirs)
    for metric in (counter, reference):
        metric.labels("stripe", "2xx").inc()
        metric.labels("stripe", "2xx").inc(2.5)
        metric.labels("github", "5xx").inc()

    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("calls_total", {"provider": "stripe", "outcome": "2xx"}) == 3.5
    created = ours.get_sample_value("calls_created", {"provider": "github", "outcome": "5xx"})
    assert created is not None and created > 0
    assert counter.labels("stripe", "2xx") is counter.labels("stripe", "2xx")


def test_histograms_expose_what_prometheus_client_exposes() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    histogram = LabelledHistogram("latency", "Latency", ["route"], ours, buckets=BUCKETS)
    reference = Histogram("latency", "Latency", ["route"], registry=theirs, buckets=BUCKETS)
    for metric in (histogram, reference):
        for amount in AMOUNTS:  # below, on and between the bounds, and past the last
            metric.labels("/in/*").observe(amount)
        metric.labels("/v1/proxy/*").observe(0.002)

    assert _exposition(ours) == _exposition(theirs)
    sample = {"route": "/in/*"}
    assert ours.get_sample_value("latency_count", sample) == len(AMOUNTS)
    assert ours.get_sample_value("latency_bucket", {**sample, "le": "0.001"}) == 2


def test_default_buckets_are_prometheus_clients() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    LabelledHistogram("wait", "Wait", ["kind"], ours).labels("a").observe(0.07)
    Histogram("wait", "Wait", ["kind"], registry=theirs).labels("a").observe(0.07)
    assert _exposition(ours) == _exposition(theirs)


def test_wrong_label_counts_and_a_negative_increment_are_refused() -> None:
    registry = CollectorRegistry()
    counter = LabelledCounter("calls", "Calls made", ["provider", "outcome"], registry)
    with pytest.raises(ValueError, match=r"takes 2 label values \(provider, outcome\), not 1"):
        counter.labels("stripe")
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("stripe", "2xx").inc(-1)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        LabelledCounter("calls", "Calls again", ["provider"], registry)
