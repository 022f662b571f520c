"""Endpoints with ``{"type": "mtls", ...}`` auth, delivered to a real TLS receiver on 127.0.0.1
that requires a client certificate."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.integration.egress.test_egress_mtls import PKI, Issued
from tests.integration.mtls_support import (
    Certificates,
    issue_certificates,
    peer_common_name,
    requiring_client_certificates,
)
from tests.integration.webhooks.outbound.outbound_support import (
    attempts_of,
    eventually,
    new_endpoint,
    new_tenant,
    outbound_client,
    outbound_runtime,
    send,
)


@dataclass
class TLSReceiver:
    """Who knocked: (path, client certificate common name, webhook-id) per request."""

    url: str = ""
    seen: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def certificates() -> Certificates:
    return issue_certificates()


@contextlib.asynccontextmanager
async def tls_receiver(pki: PKI, directory: Path) -> AsyncIterator[TLSReceiver]:
    context = requiring_client_certificates(pki, directory)
    receiver = TLSReceiver()

    async def record(request: web.Request) -> web.Response:
        common_name = peer_common_name(request)
        receiver.seen.append((request.path, common_name, request.headers["webhook-id"]))
        return web.Response(text=common_name)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    receiver.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def _mtls(issued: Issued, ca: Issued) -> dict[str, str]:
    return {"type": "mtls", "cert_pem": issued.cert_pem, "key_pem": issued.key_pem,
            "ca_pem": ca.cert_pem}  # fmt: skip


async def _deliveries(client: httpx.AsyncClient, tenant: str, message: str) -> dict[str, str]:
    found = (await client.get(f"/v1/tenants/{tenant}/messages/{message}")).json()
    return {item["endpoint_id"]: item["status"] for item in found["deliveries"]}


async def test_client_certificate_is_presented_and_a_refused_one_fails_as_tls(
    sqlite_url: str, certificates: Certificates, tmp_path: Path
) -> None:
    pki = certificates.pki
    runtime = outbound_runtime(sqlite_url)
    async with tls_receiver(pki, tmp_path) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        trusted = await new_endpoint(
            client, tenant, url=sink.url + "/trusted", auth=_mtls(pki.client, pki.ca)
        )
        # The server's certificate is trusted (ca_pem), only the client's is not: any failure
        # is the receiver refusing the certificate, not Interlink refusing the receiver.
        stranger = await new_endpoint(
            client, tenant, url=sink.url + "/stranger", auth=_mtls(certificates.intruder, pki.ca)
        )
        assert trusted["auth_type"] == stranger["auth_type"] == "mtls"
        listed = await client.get(f"/v1/tenants/{tenant}/endpoints")
        assert "PRIVATE KEY" not in listed.text and "PRIVATE KEY" not in str(trusted)

        message = await send(client, tenant, payload={"amount": 7})
        ids = {trusted["id"], stranger["id"]}

        async def both_final() -> bool:
            states = await _deliveries(client, tenant, message["id"])
            return set(states) == ids and "pending" not in states.values()

        await eventually(both_final)
        states = await _deliveries(client, tenant, message["id"])
        assert states == {trusted["id"]: "succeeded", stranger["id"]: "failed"}
        assert sink.seen == [("/trusted", "tenant-client", message["id"])]

        attempts: dict[str, list[dict[str, Any]]] = {trusted["id"]: [], stranger["id"]: []}
        for attempt in await attempts_of(client, tenant, message["id"]):
            attempts[attempt["endpoint_id"]].append(attempt)
        [good] = attempts[trusted["id"]]
        assert (good["status"], good["response_status_code"]) == ("succeeded", 200)
        assert good["response_body"] == "tenant-client"
        assert good["error_class"] is None
        refused = attempts[stranger["id"]]
        # Retry schedule 50ms,100ms,200ms: the first attempt and three retries, all refused.
        assert len(refused) == 4
        for attempt in refused:
            assert attempt["status"] == "failed"
            assert attempt["response_status_code"] is None
            assert attempt["error_class"] == "tls", attempt["error"]
            assert attempt["url"] == sink.url + "/stranger"
