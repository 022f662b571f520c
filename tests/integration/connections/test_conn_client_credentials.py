"""OAuth client credentials: token fetched at creation, cached, renewed shortly before expiry;
a token endpoint that is down fails the call with a problem and leaves the connection usable."""

from __future__ import annotations

from interlink.simulators import SIM_CLIENT_ID, SIM_CLIENT_SECRET, serve_simulator
from tests.integration.connections.conn_support import expire_token, running_hub

TOKEN = "/services/oauth2/token"


async def test_client_credentials_are_cached_and_renewed(sqlite_url: str) -> None:
    async with serve_simulator("salesforce") as sim:
        async with running_hub(sqlite_url, {"salesforce": sim.url}) as hub:
            created = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections",
                json={
                    "provider": "salesforce",
                    "auth_type": "oauth2_cc",
                    "config": {"instance_url": sim.url},
                    "credentials": {"client_id": SIM_CLIENT_ID, "client_secret": SIM_CLIENT_SECRET},
                },
            )
            assert created.status_code == 201, created.text
            assert "client_secret" not in created.text
            connection_id = created.json()["id"]
            assert sim.simulator.count(TOKEN) == 1
            async with hub.client(hub.key) as app:
                for _ in range(3):
                    assert (await app.get(f"/v1/proxy/{connection_id}/limits")).status_code == 200
                assert sim.simulator.count(TOKEN) == 1  # cached
                await expire_token(hub, connection_id)
                assert (await app.get(f"/v1/proxy/{connection_id}/limits")).status_code == 200
                assert sim.simulator.count(TOKEN) == 2
            refused = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections",
                json={
                    "provider": "salesforce",
                    "auth_type": "oauth2_cc",
                    "config": {"instance_url": sim.url},
                    "credentials": {"client_id": SIM_CLIENT_ID, "client_secret": "wrong"},
                },
            )
            assert refused.status_code == 422
            assert refused.json()["type"].endswith("/credentials-refused")


async def test_token_endpoint_down_is_a_502_and_the_connection_recovers(sqlite_url: str) -> None:
    async with serve_simulator("hubspot") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            callback = await hub.connect("hubspot", redirect_after="https://a.test/")
            connection_id = callback.headers["location"].split("connection_id=")[1]
            await expire_token(hub, connection_id)
            path = f"/v1/proxy/{connection_id}/crm/v3/objects/contacts"
            working = hub.state.catalog
            hub.state.use_catalog(
                working.with_overrides({"hubspot": "http://127.0.0.1:9"})  # nothing listens
            )
            async with hub.client(hub.key) as app:
                failed = await app.get(path)
                assert failed.status_code == 502, failed.text
                assert failed.json()["type"].endswith("/token-refresh-failed")
                shown = await hub.admin.get(
                    f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}"
                )
                assert shown.json()["status"] == "error"
                hub.state.use_catalog(working)
                recovered = await app.get(path)
                assert recovered.status_code == 200, recovered.text
            shown = await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}")
            assert shown.json()["status"] == "active"
