"""Connections from API keys: checked by the health probe before storage; tenant isolation."""

from __future__ import annotations

import socket

from interlink.connections import service
from interlink.ids import new_id
from interlink.simulators import serve_simulator
from tests.integration.connections.conn_support import running_hub


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_api_key_is_probed_then_stored_encrypted_and_injected(db_url: str) -> None:
    async with serve_simulator("stripe", records=3) as sim:
        async with running_hub(db_url, {"stripe": sim.url}) as hub:
            base = f"/v1/tenants/{hub.tenant_id}/connections"
            body = {"provider": "stripe", "auth_type": "api_key"}
            refused = await hub.admin.post(
                base, json={**body, "credentials": {"api_key": "sk_live_nope"}}
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["type"].endswith("/credentials-refused")
            assert "401" in refused.json()["detail"]
            created = await hub.admin.post(
                base, json={**body, "credentials": {"api_key": "sk_test_good"}, "name": "live"}
            )
            assert created.status_code == 201, created.text
            connection = created.json()
            assert connection["status"] == "active" and "sk_test_good" not in created.text
            assert sim.simulator.requests[-1].path == "/v1/balance"
            listed = (await hub.admin.get(base)).json()["data"]
            assert [c["id"] for c in listed] == [connection["id"]]
            async with hub.client(hub.key) as app:
                answer = await app.get(
                    f"/v1/proxy/{connection['id']}/v1/customers",
                    params={"limit": 2},
                    headers={"Authorization": f"Bearer {hub.key}"},
                )
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["data"]) == 2
            sent = sim.simulator.requests[-1]
            assert sent.query == "limit=2"
            assert sent.headers["Authorization"] == "Bearer sk_test_good"
            assert sent.headers["Stripe-Version"] == "2024-06-20"


async def test_unreachable_provider_is_a_502_and_nothing_is_stored(sqlite_url: str) -> None:
    async with running_hub(sqlite_url, {"stripe": f"http://127.0.0.1:{_closed_port()}"}) as hub:
        base = f"/v1/tenants/{hub.tenant_id}/connections"
        answer = await hub.admin.post(
            base,
            json={"provider": "stripe", "auth_type": "api_key", "credentials": {"api_key": "k"}},
        )
        assert answer.status_code == 502, answer.text
        assert answer.json()["type"].endswith("/provider-unreachable")
        assert (await hub.admin.get(base)).json()["data"] == []


async def test_bad_input_is_a_problem_never_a_500(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        base = f"/v1/tenants/{hub.tenant_id}/connections"
        for body in (
            {"provider": "nope", "auth_type": "api_key", "credentials": {"api_key": "k"}},
            {"provider": "stripe", "auth_type": "api_key", "credentials": {}},
            {"provider": "sendgrid", "auth_type": "basic", "credentials": {"username": "u"}},
            {"provider": "rest", "auth_type": "api_key", "credentials": {"api_key": "k"}},
        ):
            answer = await hub.admin.post(base, json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        # A literal address the SSRF guard refuses, with or without the probe; a host no DNS
        # name can be (the resolver's IDNA codec raised, unhandled, on those).
        for url, verify, slug, detail in (
            ("http://169.254.169.254", False, "blocked-destination", "refused"),
            ("http://10.0.0.7:8080", True, "blocked-destination", "refused"),
            ("http://[fd00::1]", False, "blocked-destination", "refused"),
            ("http://api..example.com", False, "invalid-config", "empty label"),
            (f"https://{'a' * 64}.example.com", False, "invalid-config", "longer than 63"),
        ):
            answer = await hub.admin.post(
                base,
                json={"provider": "rest", "auth_type": "api_key", "verify": verify,
                      "credentials": {"api_key": "k"}, "config": {"base_url": url}},
            )  # fmt: skip
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["type"].endswith("/" + slug)
            assert detail in answer.json()["detail"]
        assert (await hub.admin.get(base)).json()["data"] == []


async def test_another_tenants_key_sees_404_everywhere(sqlite_url: str) -> None:
    async with serve_simulator("stripe") as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            created = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections",
                json={
                    "provider": "stripe",
                    "auth_type": "api_key",
                    "credentials": {"api_key": "sk_test_a"},
                },
            )
            connection_id = created.json()["id"]
            tenant_b, key_b = await hub.tenant("B")
            calls_before = len(sim.simulator.requests)
            async with hub.client(key_b) as other:
                for path in (
                    f"/v1/proxy/{connection_id}/v1/customers",
                    f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}",
                    f"/v1/tenants/{tenant_b}/connections/{connection_id}",
                ):
                    answer = await other.get(path)
                    assert answer.status_code == 404, (path, answer.text)
                    assert answer.headers["content-type"] == "application/problem+json"
                no_auth = await other.get(
                    f"/v1/proxy/{connection_id}/v1/customers", headers={"Authorization": ""}
                )
                assert no_auth.status_code == 401
            assert len(sim.simulator.requests) == calls_before


async def test_providers_catalog_and_health(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        providers = (await hub.admin.get("/v1/providers")).json()
        names = {p["name"] for p in providers}
        assert {"stripe", "salesforce", "hubspot", "github", "rest"} <= names
        stripe = next(p for p in providers if p["name"] == "stripe")
        assert stripe["api_version"] == {"name": "Stripe-Version", "value": "2024-06-20"}
        health = (await hub.admin.get("/v1/providers/health")).json()
        assert {h["provider"] for h in health} == names
        assert all(h["status"] == "unknown" for h in health)


async def test_a_key_that_would_inject_a_header_is_refused_before_sending(sqlite_url: str) -> None:
    async with serve_simulator("stripe", records=1) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            base = f"/v1/tenants/{hub.tenant_id}/connections"
            injecting = {"api_key": "k\r\nX-Injected: yes"}
            refused = await hub.admin.post(
                base,
                json={"provider": "rest", "auth_type": "api_key", "verify": False,
                      "credentials": injecting, "config": {"base_url": sim.url}},
            )  # fmt: skip
            assert refused.status_code == 422, refused.text
            assert "credentials.api_key: must not hold control characters" in refused.text
            colon = await hub.admin.post(
                base,
                json={"provider": "rest", "auth_type": "basic", "verify": False,
                      "credentials": {"username": "a:b", "password": "p"},
                      "config": {"base_url": sim.url}},
            )  # fmt: skip
            assert colon.status_code == 422, colon.text
            assert "user-id cannot hold ':'" in colon.text
            # One stored anyway (a token as a provider returned it, say) is refused per call.
            connection_id = new_id("con")
            async with hub.runtime.db.transaction() as conn:
                await service.insert_connection(
                    conn, hub.runtime.vault, connection_id=connection_id,
                    tenant_id=hub.tenant_id, provider="rest", auth_type="api_key",
                    credentials=injecting, config={"base_url": sim.url},
                )  # fmt: skip
            seen = len(sim.simulator.requests)
            async with hub.client(hub.key) as app:
                answer = await app.get(
                    f"/v1/proxy/{connection_id}/v1/customers",
                    headers={"Authorization": f"Bearer {hub.key}"},
                )
            assert answer.status_code == 422, answer.text
            assert answer.json()["type"].endswith("/invalid-request")
            assert len(sim.simulator.requests) == seen
