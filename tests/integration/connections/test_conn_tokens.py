"""Token lifetime: refresh ahead of expiry and on 401, invalid_grant, revocation on delete."""

from __future__ import annotations

from interlink.simulators import serve_simulator
from tests.integration.connections.conn_support import (
    Hub,
    connection_id_of,
    expire_token,
    running_hub,
)

AFTER = "https://app.example.com/done"


async def _events(hub: Hub, name: str) -> list[dict[str, object]]:
    await hub.state.events.flush()
    found = await hub.runtime.outbox.list(tenant_id=hub.tenant_id, limit=200)
    return [e for e in found if e["type"] == f"dev.interlink.{name}"]


async def test_due_token_is_refreshed_and_a_missing_refresh_token_is_kept(sqlite_url: str) -> None:
    async with serve_simulator("salesforce") as sim:
        async with running_hub(sqlite_url, {"salesforce": sim.url}) as hub:
            await hub.oauth_app("salesforce")
            connection_id = connection_id_of(await hub.connect("salesforce", redirect_after=AFTER))
            token_path = "/services/oauth2/token"
            async with hub.client(hub.key) as app:
                for round_ in (1, 2):  # Salesforce never re-sends the refresh token
                    await expire_token(hub, connection_id)
                    answer = await app.get(f"/v1/proxy/{connection_id}/limits")
                    assert answer.status_code == 200, answer.text
                    assert sim.simulator.count(token_path) == 1 + round_
            shown = (
                await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}")
            ).json()
            assert shown["status"] == "active" and shown["last_refreshed_at"]


async def test_provider_401_triggers_one_refresh_and_a_retry(sqlite_url: str) -> None:
    async with serve_simulator("hubspot", records=2) as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            connection_id = connection_id_of(await hub.connect("hubspot", redirect_after=AFTER))
            path = f"/v1/proxy/{connection_id}/crm/v3/objects/contacts"
            async with hub.client(hub.key) as app:
                assert (await app.get(path)).status_code == 200
                token = sim.simulator.requests[-1].headers["Authorization"].split(" ", 1)[1]
                assert sim.simulator.oauth.revoke(token)
                answer = await app.get(path)
            assert answer.status_code == 200, answer.text
            assert sim.simulator.count("/oauth/v1/token") == 2
            statuses = [r.status for r in sim.simulator.requests if r.path.startswith("/crm")]
            assert statuses == [200, 401, 200]


async def test_invalid_grant_expires_the_connection_and_fails_fast(sqlite_url: str) -> None:
    async with serve_simulator("hubspot", faults="revoked_refresh") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            connection_id = connection_id_of(await hub.connect("hubspot", redirect_after=AFTER))
            await expire_token(hub, connection_id)
            path = f"/v1/proxy/{connection_id}/crm/v3/objects/contacts"
            async with hub.client(hub.key) as app:
                first = await app.get(path)
                second = await app.get(path)
            for answer in (first, second):
                assert answer.status_code == 424, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["type"].endswith("/connection-expired")
            assert sim.simulator.count("/oauth/v1/token") == 2  # exchange + one refused refresh
            shown = (
                await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}")
            ).json()
            assert shown["status"] == "expired" and "invalid_grant" in shown["status_reason"]
            assert len(await _events(hub, "connection.expired")) == 1


async def test_reauthorizing_an_expired_connection_reactivates_it(sqlite_url: str) -> None:
    async with serve_simulator("hubspot", faults="revoked_refresh") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            connection_id = connection_id_of(await hub.connect("hubspot", redirect_after=AFTER))
            await expire_token(hub, connection_id)
            async with hub.client(hub.key) as app:
                path = f"/v1/proxy/{connection_id}/crm/v3/objects/contacts"
                assert (await app.get(path)).status_code == 424
                again = await hub.connect(
                    "hubspot", redirect_after=AFTER, connection_id=connection_id
                )
                assert connection_id_of(again) == connection_id
                assert (await app.get(path)).status_code == 200


async def test_delete_revokes_at_the_provider_then_removes(sqlite_url: str) -> None:
    async with serve_simulator("hubspot") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            connection_id = connection_id_of(await hub.connect("hubspot", redirect_after=AFTER))
            url = f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}"
            assert (await hub.admin.delete(url)).status_code == 204
            revocations = [r for r in sim.simulator.requests if r.method == "DELETE"]
            assert len(revocations) == 1 and revocations[0].status == 204
            assert (await hub.admin.get(url)).status_code == 404
            async with hub.client(hub.key) as app:
                gone = await app.get(f"/v1/proxy/{connection_id}/crm/v3/objects/contacts")
            assert gone.status_code == 404
            revoked = await _events(hub, "connection.revoked")
            assert revoked[0]["data"]["revoked_at_provider"] is True


async def test_revoke_keeps_the_connection_as_revoked_and_the_proxy_refuses_it(
    sqlite_url: str,
) -> None:
    async with serve_simulator("hubspot") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            connection_id = connection_id_of(await hub.connect("hubspot", redirect_after=AFTER))
            url = f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}"
            answer = await hub.admin.post(url + "/revoke")
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "revoked"
            revocations = [r for r in sim.simulator.requests if r.method == "DELETE"]
            assert len(revocations) == 1 and revocations[0].status == 204
            shown = (await hub.admin.get(url)).json()
            assert shown["status"] == "revoked"
            assert "credentials" not in shown
            async with hub.client(hub.key) as app:
                refused = await app.get(f"/v1/proxy/{connection_id}/crm/v3/objects/contacts")
            assert refused.status_code == 424, refused.text
            assert refused.json()["type"].endswith("/connection-revoked")
            # Again: nothing more happens at the provider or in the outbox.
            assert (await hub.admin.post(url + "/revoke")).json()["status"] == "revoked"
            assert len([r for r in sim.simulator.requests if r.method == "DELETE"]) == 1
            [event] = await _events(hub, "connection.revoked")
            assert event["data"]["revoked_at_provider"] is True
            listed = await hub.admin.get(
                f"/v1/tenants/{hub.tenant_id}/connections", params={"status": "revoked"}
            )
            assert [c["id"] for c in listed.json()["data"]] == [connection_id]
            # Deleting it afterwards does not try to revoke a token that is gone.
            assert (await hub.admin.delete(url)).status_code == 204
            assert len([r for r in sim.simulator.requests if r.method == "DELETE"]) == 1


async def test_revoking_an_unknown_or_foreign_connection_is_404(sqlite_url: str) -> None:
    async with running_hub(sqlite_url, {}) as hub:
        url = f"/v1/tenants/{hub.tenant_id}/connections/con_01J0000000000000000000000/revoke"
        answer = await hub.admin.post(url)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"


async def test_authorizing_a_revoked_connection_again_revives_it(sqlite_url: str) -> None:
    async with serve_simulator("hubspot") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            connection_id = connection_id_of(await hub.connect("hubspot", redirect_after=AFTER))
            url = f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}"
            assert (await hub.admin.post(url + "/revoke")).status_code == 200
            again = await hub.connect("hubspot", redirect_after=AFTER, connection_id=connection_id)
            assert connection_id_of(again) == connection_id
            assert (await hub.admin.get(url)).json()["status"] == "active"
            async with hub.client(hub.key) as app:
                answer = await app.get(f"/v1/proxy/{connection_id}/crm/v3/objects/contacts")
            assert answer.status_code == 200, answer.text
