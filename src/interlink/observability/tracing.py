"""OpenTelemetry tracing, switched on when an OTLP endpoint is configured."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from interlink import __version__

__all__ = ["configure_tracing", "tracer"]


def configure_tracing(
    endpoint: str | None, service_name: str, *, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Install a tracer provider exporting over OTLP/HTTP, or the given processor (tests).

    Without an endpoint, tracing stays the no-op default and costs nothing.
    """
    if endpoint is None and processor is None:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "service.version": __version__})
    )
    if processor is not None:
        provider.add_span_processor(processor)
    if endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return provider


def tracer(provider: TracerProvider | None) -> Any:
    return (provider or trace.get_tracer_provider()).get_tracer("interlink", __version__)
