"""`labelled`: a labelled child looked up once, counting into the same series as ``labels``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from interlink.observability.metrics import labelled


def test_labelled_children_are_kept_and_count_into_their_series() -> None:
    registry = CollectorRegistry()
    calls = Counter("calls", "calls", ["provider", "outcome"], registry=registry)
    other = Counter("others", "others", ["provider", "outcome"], registry=CollectorRegistry())

    labelled(calls, "stripe", "2xx").inc()
    labelled(calls, "stripe", "2xx").inc(2)
    calls.labels("stripe", "5xx").inc()

    assert labelled(calls, "stripe", "2xx") is labelled(calls, "stripe", "2xx")
    assert labelled(other, "stripe", "2xx") is not labelled(calls, "stripe", "2xx")
    sample = {"provider": "stripe", "outcome": "2xx"}
    assert registry.get_sample_value("calls_total", sample) == 3
    assert registry.get_sample_value("calls_total", {**sample, "outcome": "5xx"}) == 1
