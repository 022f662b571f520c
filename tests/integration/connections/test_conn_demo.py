"""``serve --demo``: a tenant wired to the built-in simulators, usable through the proxy."""

from __future__ import annotations

from interlink.connections.demo import start_demo
from tests.integration.connections.conn_support import running_hub

PATHS = {
    "stripe": "v1/customers",
    "salesforce": "limits",
    "hubspot": "crm/v3/objects/contacts",
    "github": "user",
}


async def test_demo_tenant_reaches_every_simulator_through_the_proxy(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        demo = await start_demo(hub.runtime)
        again = await start_demo(hub.runtime)  # a restart re-seeds the same tenant
        assert again.tenant_id == demo.tenant_id
        async with hub.client(again.api_key) as app:
            listed = (await app.get(f"/v1/tenants/{demo.tenant_id}/connections")).json()["data"]
            assert sorted(c["provider"] for c in listed) == sorted(PATHS)
            for connection in listed:
                path = PATHS[connection["provider"]]
                answer = await app.get(f"/v1/proxy/{connection['id']}/{path}")
                assert answer.status_code == 200, (connection["provider"], answer.text)
