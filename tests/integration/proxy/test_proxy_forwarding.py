"""What the proxy forwards and what it answers: bodies, methods, provider errors, framing."""

from __future__ import annotations

from interlink.simulators import serve_simulator
from tests.integration.connections.conn_support import running_hub


async def test_bodies_methods_and_provider_errors_pass_through(sqlite_url: str) -> None:
    async with serve_simulator("stripe", records=2) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            created = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections",
                json={"provider": "stripe", "auth_type": "api_key",
                      "credentials": {"api_key": "sk_test_f"}},
            )  # fmt: skip
            base = f"/v1/proxy/{created.json()['id']}"
            async with hub.client(hub.key) as app:
                made = await app.post(
                    f"{base}/v1/customers",
                    content=b"email=ada%40example.com&name=Ada",
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Idempotency-Key": "k1"},
                )  # fmt: skip
                assert made.status_code == 200, made.text
                assert made.json()["email"] == "ada@example.com"
                sent = sim.simulator.requests[-1]
                assert sent.method == "POST" and sent.body == b"email=ada%40example.com&name=Ada"
                assert sent.headers["Idempotency-Key"] == "k1"
                assert made.headers["content-length"] == str(len(made.content))
                missing = await app.get(f"{base}/v1/customers/cus_doesnotexist")
                assert missing.status_code == 404
                assert missing.headers["content-type"].startswith("application/json")
                assert missing.json()["error"]["type"] == "invalid_request_error"  # Stripe's
                gone = await app.delete(f"{base}/v1/customers/{made.json()['id']}")
                assert gone.status_code == 200 and gone.json()["deleted"] is True
                for path in ("/v1/proxy/bad!id/x", "/v1/proxy/con_missing/v1/balance"):
                    answer = await app.get(path)
                    assert answer.status_code == 404
                    assert answer.headers["content-type"] == "application/problem+json"
