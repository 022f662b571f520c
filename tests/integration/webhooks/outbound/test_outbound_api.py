"""The endpoint API: the SSRF guard at creation and at delivery, https, isolation, problems."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import api_client
from tests.integration.webhooks.outbound.outbound_support import (
    Received,
    attempts_of,
    eventually,
    new_endpoint,
    new_tenant,
    outbound_client,
    outbound_runtime,
    receiver,
    send,
)

REFUSED = [
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.9/hook",
    "https://172.31.255.1/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://2130706433/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_destinations_are_refused_at_creation(sqlite_url: str, url: str) -> None:
    runtime = outbound_runtime(sqlite_url, egress_allow=[])
    async with outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        refused = await client.post(f"/v1/tenants/{tenant}/endpoints", json={"url": url})
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/invalid-endpoint")
        assert "url:" in refused.json()["detail"]


@pytest.mark.parametrize(
    "url", ["https://hooks..example.com/in", "https://.example.com/in", f"https://{'h' * 64}.io/"]
)
async def test_a_host_no_dns_name_can_be_is_refused_at_creation(sqlite_url: str, url: str) -> None:
    """The resolver's IDNA codec raised UnicodeError on these, which the check let through: a
    500 at creation."""
    runtime = outbound_runtime(sqlite_url, egress_allow=[])
    async with outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        refused = await client.post(f"/v1/tenants/{tenant}/endpoints", json={"url": url})
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("/invalid-endpoint")
        assert "neither a valid name nor an IP address" in refused.json()["detail"]


async def test_https_is_required_outside_the_allow_list(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url, egress_allow=["10.0.0.0/8"])
    async with outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        plain = await client.post(
            f"/v1/tenants/{tenant}/endpoints", json={"url": "http://93.184.215.14/hook"}
        )
        assert plain.status_code == 422 and "https" in plain.json()["detail"]
        inside = await client.post(
            f"/v1/tenants/{tenant}/endpoints", json={"url": "http://10.9.9.9/hook"}
        )
        assert inside.status_code == 201, inside.text


async def test_guard_refuses_at_delivery_time_and_redirects_are_not_followed(
    sqlite_url: str,
) -> None:
    # Created while 127.0.0.1 was allowed, delivered after the allow-list changed: the connect-
    # time guard refuses it (what DNS rebinding would also meet).
    allowed = outbound_runtime(sqlite_url)
    async with receiver() as target:

        async def redirect(item: Received, _: int) -> web.StreamResponse:
            return web.Response(status=302, headers={"Location": target.url})

        async with receiver(redirect) as hop:
            async with outbound_client(allowed) as client:
                tenant = await new_tenant(client)
                await new_endpoint(client, tenant, url=hop.url)
                bounced = await send(client, tenant)
                # Retried (a 302 is a failure) within a few tenths of a second: at least one
                # request, and its attempt recorded, which comes after the hop has it.
                await eventually(lambda: len(hop.received) >= 1)
                log: list[dict[str, Any]] = []

                async def recorded() -> bool:
                    log[:] = await attempts_of(client, tenant, bounced["id"])
                    return bool(log)

                await eventually(recorded)
            assert target.received == []  # the redirect to loopback was never followed
            assert log[0]["response_status_code"] == 302 and log[0]["status"] == "failed"

            guarded = outbound_runtime(sqlite_url, egress_allow=[])
            async with outbound_client(guarded) as client:
                blocked = await send(client, tenant)

                async def refused() -> bool:
                    attempts = await attempts_of(client, tenant, blocked["id"])
                    return bool(attempts) and attempts[0]["error_class"] == "blocked_destination"

                await eventually(refused)
            assert [item.headers["webhook-id"] for item in hop.received].count(blocked["id"]) == 0


async def test_another_tenant_gets_404_on_every_outbound_route(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as admin:
        tenant_a = await new_tenant(admin, "A")
        tenant_b = await new_tenant(admin, "B")
        key_b = (await admin.post(f"/v1/tenants/{tenant_b}/api-keys", json={})).json()["key"]
        endpoint = await new_endpoint(admin, tenant_a, url=sink.url)
        message = await send(admin, tenant_a)
        await eventually(lambda: len(sink.received) == 1)
        ep, msg = endpoint["id"], message["id"]
    async with api_client(runtime, token=key_b) as other:
        routes = [
            ("GET", f"/v1/tenants/{tenant_a}/endpoints/{ep}"),
            ("GET", f"/v1/tenants/{tenant_a}/endpoints/{ep}/secret"),
            ("GET", f"/v1/tenants/{tenant_a}/messages/{msg}"),
            ("GET", f"/v1/tenants/{tenant_a}/messages/{msg}/attempts"),
            ("POST", f"/v1/tenants/{tenant_a}/messages/{msg}/endpoints/{ep}/resend"),
        ]
        for method, path in routes:
            answer = await other.request(method, path)
            assert answer.status_code == 404 and tenant_a in answer.json()["detail"]
            same_path = path.replace(tenant_a, tenant_b)
            answer = await other.request(method, same_path)
            assert answer.status_code == 404, (method, same_path)
            assert tenant_a not in answer.text
        posted = await other.post(
            f"/v1/tenants/{tenant_a}/messages", json={"event_type": "a", "payload": {}}
        )
        assert posted.status_code == 404 and tenant_a in posted.json()["detail"]
        assert posted.headers["content-type"] == "application/problem+json"
        mine = await other.get(f"/v1/tenants/{tenant_b}/endpoints")
        assert mine.json() == {"data": [], "next_cursor": None}
        cannot = await other.post("/v1/event-types", json={"name": "x.y"})
        assert cannot.status_code == 403


async def test_endpoint_validation_and_pagination(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        base = f"/v1/tenants/{tenant}/endpoints"
        url = "http://127.0.0.1:9/hook"
        cases = [
            ({"url": url, "filter": {"a": {"$nope": 1}}}, "filter"),
            ({"url": url, "retry_schedule": "5s,soon"}, "retry_schedule"),
            ({"url": url, "headers": {"webhook-id": "x"}}, "headers"),
            ({"url": url, "secret": "whsec_c2hvcnQ="}, "secret"),
            ({"url": "ftp://example.com/x"}, "url"),
            ({"url": url, "auth": {"type": "header", "name": "Webhook-Id", "value": "x"}}, "auth"),
            ({"url": url, "auth": {"type": "mtls", "cert_pem": "no", "key_pem": "no"}}, "auth"),
            (
                {"url": url, "auth": {"type": "basic", "username": "a:b", "password": "c"}},
                "cannot hold ':'",
            ),  # fmt: skip
        ]
        for body, field in cases:
            answer = await client.post(base, json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert field in answer.text
        made = [(await client.post(base, json={"url": url})).json()["id"] for _ in range(3)]
        page = (await client.get(base, params={"limit": 2})).json()
        rest = (await client.get(base, params={"limit": 2, "cursor": page["next_cursor"]})).json()
        assert [e["id"] for e in page["data"] + rest["data"]] == sorted(made)
        rotated = await client.post(
            f"{base}/{made[0]}/secret/rotate", json={"grace_seconds": 8 * 86400}
        )
        assert rotated.status_code == 422
        changed = await client.patch(f"{base}/{made[0]}", json={"description": "new", "auth": {
            "type": "oauth2_client_credentials", "token_url": "http://127.0.0.1:9/token",
            "client_id": "c", "client_secret": "s"}})  # fmt: skip
        assert changed.json()["description"] == "new"
        assert changed.json()["auth_type"] == "oauth2_client_credentials"
        assert "client_secret" not in changed.text
        assert (await client.delete(f"{base}/{made[0]}")).status_code == 204
        assert (await client.get(f"{base}/{made[0]}")).status_code == 404
        await asyncio.sleep(0)
