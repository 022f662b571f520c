"""Logs (structlog), metrics (Prometheus) and traces (OpenTelemetry) for every capability."""
