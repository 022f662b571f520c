"""Mutual TLS through the proxy: a ``rest`` connection whose credentials carry ``tls_cert_pem``,
``tls_key_pem`` and ``tls_ca_pem`` reaches an https upstream on 127.0.0.1 that requires a
client certificate; without them, or with a certificate the upstream does not trust, the
caller gets Interlink's problem+json."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integration.connections.conn_support import Hub, running_hub
from tests.integration.egress.test_egress_mtls import PKI
from tests.integration.mtls_support import (
    Certificates,
    issue_certificates,
    peer_common_name,
    requiring_client_certificates,
)


@dataclass
class Upstream:
    """What reached the provider: (path, query, client certificate CN, Authorization)."""

    url: str = ""
    seen: list[tuple[str, str, str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def certificates() -> Certificates:
    return issue_certificates()


@contextlib.asynccontextmanager
async def mtls_upstream(pki: PKI, directory: Path) -> AsyncIterator[Upstream]:
    context = requiring_client_certificates(pki, directory)
    upstream = Upstream()

    async def whoami(request: web.Request) -> web.Response:
        common_name = peer_common_name(request)
        authorization = request.headers.get("Authorization", "")
        upstream.seen.append((request.path, request.query_string, common_name, authorization))
        return web.json_response({"common_name": common_name, "path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", whoami)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    upstream.url = f"https://127.0.0.1:{runner.addresses[0][1]}/api"
    try:
        yield upstream
    finally:
        await runner.cleanup()


async def _connect(hub: Hub, base_url: str, credentials: dict[str, str]) -> str:
    created = await hub.admin.post(
        f"/v1/tenants/{hub.tenant_id}/connections",
        json={"provider": "rest", "auth_type": "api_key", "config": {"base_url": base_url},
              "credentials": credentials},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert "PRIVATE KEY" not in created.text and "BEGIN CERTIFICATE" not in created.text
    connection_id: str = created.json()["id"]
    return connection_id


def _assert_tls_problem(answer: Any, connection_id: str, reason: str) -> None:
    assert answer.status_code == 502, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/provider-unreachable")
    assert problem["status"] == 502
    assert problem["instance"] == f"/v1/proxy/{connection_id}/v1/whoami"
    assert "TLS" in problem["detail"] and reason in problem["detail"], problem["detail"]
    assert "PRIVATE KEY" not in answer.text


async def test_proxy_presents_the_connections_client_certificate(
    sqlite_url: str, certificates: Certificates, tmp_path: Path
) -> None:
    pki = certificates.pki
    async with mtls_upstream(pki, tmp_path) as upstream, running_hub(sqlite_url) as hub:
        with_cert = await _connect(
            hub,
            upstream.url,
            {"api_key": "k-mtls", "tls_cert_pem": pki.client.cert_pem,
             "tls_key_pem": pki.client.key_pem, "tls_ca_pem": pki.ca.cert_pem},
        )  # fmt: skip
        without_cert = await _connect(hub, upstream.url, {"api_key": "k-plain"})
        # The upstream's own certificate is trusted here, so a refusal can only be the
        # upstream refusing a client certificate from another CA.
        with_intruder = await _connect(
            hub,
            upstream.url,
            {"api_key": "k-intruder", "tls_cert_pem": certificates.intruder.cert_pem,
             "tls_key_pem": certificates.intruder.key_pem, "tls_ca_pem": pki.ca.cert_pem},
        )  # fmt: skip

        async with hub.client(hub.key) as app:
            answer = await app.get(f"/v1/proxy/{with_cert}/v1/whoami", params={"n": "1"})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"common_name": "tenant-client", "path": "/api/v1/whoami"}
            assert answer.headers["x-interlink-connection-id"] == with_cert
            assert upstream.seen == [("/api/v1/whoami", "n=1", "tenant-client", "Bearer k-mtls")]

            # Without tls_ca_pem the system trust store refuses the upstream's certificate;
            # with the intruder's certificate the upstream aborts the handshake.
            for connection_id, reason in (
                (without_cert, "CERTIFICATE_VERIFY_FAILED"),
                (with_intruder, "handshake aborted"),
            ):
                refused = await app.get(f"/v1/proxy/{connection_id}/v1/whoami")
                _assert_tls_problem(refused, connection_id, reason)
            assert len(upstream.seen) == 1  # no refused handshake reached the handler

            again = await app.get(f"/v1/proxy/{with_cert}/v1/whoami")
            assert again.status_code == 200, again.text
            assert upstream.seen[-1][2:] == ("tenant-client", "Bearer k-mtls")
