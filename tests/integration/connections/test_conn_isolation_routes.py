"""Every connections route under /v1/tenants/{tenant_id} answers another tenant's key with 404."""

from __future__ import annotations

import re

from interlink.api.app import create_app
from tests.integration.connections.conn_support import running_hub


async def test_every_tenant_route_refuses_another_tenants_key(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        spec = create_app(hub.runtime, run_workers=False).openapi()
        routes = [
            (method.upper(), path)
            for path, operations in spec["paths"].items()
            if "{tenant_id}" in path and ("connection" in path or "oauth" in path)
            for method in operations
        ]
        assert len(routes) >= 9, routes
        _, key_b = await hub.tenant("B")
        async with hub.client(key_b) as other:
            for method, template in routes:
                path = template.replace("{tenant_id}", hub.tenant_id)
                path = re.sub(r"\{[a-z_]+\}", "x_1", path)
                answer = await other.request(method, path, json={})
                assert answer.status_code == 404, (method, template, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert hub.tenant_id in answer.json()["detail"], (method, template)


async def test_values_the_store_cannot_hold_are_refused(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        await hub.oauth_app("hubspot")
        for path, body in (
            ("connections/oauth/start", {"provider": "hubspot", "config": {"n": 2**70}}),
            (
                "connections",
                {
                    "provider": "stripe",
                    "auth_type": "api_key",
                    "metadata": {"n": -(2**64)},
                    "credentials": {"api_key": "k"},
                },
            ),  # fmt: skip
            ("connections/oauth/start", {"provider": "hubspot", "config": {"n": "a\x00"}}),
        ):
            answer = await hub.admin.post(f"/v1/tenants/{hub.tenant_id}/{path}", json=body)
            assert answer.status_code == 422, (body, answer.text)
