"""Traces, and secrets never reaching logs or API answers."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from interlink.observability.logging import configure_logging, redact
from interlink.runtime import Runtime
from tests.conftest import ADMIN_TOKEN, api_client, make_settings


async def test_requests_are_traced_with_the_route_template(sqlite_url: str) -> None:
    exporter = InMemorySpanExporter()
    runtime = Runtime(
        make_settings(sqlite_url), capabilities=[], span_processor=SimpleSpanProcessor(exporter)
    )
    await runtime.start(migrate_schema=True)
    try:
        async with api_client(runtime) as admin:
            await admin.get("/v1/tenants/ten_unknown", headers={"X-Request-ID": "trace-me"})
    finally:
        await runtime.close()
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("GET /v1/tenants/")]
    assert span.name == "GET /v1/tenants/{tenant_id}"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["interlink.request_id"] == "trace-me"


async def test_secrets_never_appear_in_logs_or_answers(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("json", "debug")
    runtime = Runtime(make_settings(sqlite_url), capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        async with api_client(runtime) as admin:
            tenant = (await admin.post("/v1/tenants", json={"name": "Secretive"})).json()
            key = (await admin.post(f"/v1/tenants/{tenant['id']}/api-keys", json={})).json()["key"]
            listed = (await admin.get(f"/v1/tenants/{tenant['id']}/api-keys")).text
            audit = (await admin.get("/v1/audit-log")).text
        async with api_client(runtime, token=key) as client:
            await client.get(f"/v1/tenants/{tenant['id']}")
        async with api_client(runtime, token=key + "x") as client:
            await client.get(f"/v1/tenants/{tenant['id']}")
        # Even a careless log call with a secret in it is masked.
        logging.getLogger("interlink.test").warning("calling with Bearer %s", key)
        import structlog

        structlog.get_logger("interlink.test").info(
            "careless", api_key=key, note=f"token {ADMIN_TOKEN}"
        )
    finally:
        await runtime.close()
        configure_logging("json", "info")
    logs = captured.getvalue()
    assert "request" in logs and "careless" in logs
    for secret in (key, ADMIN_TOKEN, key[4:]):
        assert secret not in logs
        assert secret not in listed
        assert secret not in audit
    assert "[redacted]" in logs


def test_redact_masks_nested_secret_fields_and_known_token_shapes() -> None:
    value = {
        "headers": {"Authorization": "Bearer abc.def.ghi", "X-Other": "ok"},
        "client_secret": "s3cr3t",
        "items": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "fine"],
    }
    masked = redact(value)
    assert masked["headers"]["Authorization"] == "[redacted]"
    assert masked["headers"]["X-Other"] == "ok"
    assert masked["client_secret"] == "[redacted]"
    assert masked["items"] == ["[redacted]", "fine"]
