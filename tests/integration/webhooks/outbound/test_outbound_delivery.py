"""Deliveries to a real receiver verify with the official verifiers, also during rotation."""

from __future__ import annotations

import base64

import orjson
import pytest
import standardwebhooks
import svix.webhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from interlink import __version__
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


def _verify_both(secret: str, item: Received) -> None:
    standardwebhooks.Webhook(secret).verify(item.body, item.headers)
    svix.webhooks.Webhook(secret).verify(item.body, item.headers)


async def test_deliveries_verify_with_standardwebhooks_and_svix_during_rotation(
    db_url: str,
) -> None:
    runtime = outbound_runtime(db_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(
            client, tenant, url=sink.url, headers={"X-Customer": "c-42"}, metadata={"k": "v"}
        )
        old_secret = endpoint["secret"]
        assert old_secret.startswith("whsec_")
        first = await send(client, tenant, payload={"amount": 100, "note": "é ✓"})
        await eventually(lambda: len(sink.received) == 1)
        item = sink.received[0]
        _verify_both(old_secret, item)
        assert item.headers["webhook-id"] == first["id"]
        assert item.headers["User-Agent"] == f"Interlink/{__version__}"
        assert item.headers["X-Customer"] == "c-42"
        assert item.headers["Content-Type"] == "application/json"
        body = orjson.loads(item.body)
        assert body["type"] == "invoice.paid"
        assert body["data"] == {"amount": 100, "note": "é ✓"}
        assert body["timestamp"].endswith("Z")

        read = await client.get(f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}/secret")
        assert read.json()["key"] == old_secret
        rotated = await client.post(
            f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}/secret/rotate", json={}
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["key"]
        assert new_secret != old_secret
        assert rotated.json()["previous_key_expires_at"] is not None

        await send(client, tenant)
        await eventually(lambda: len(sink.received) == 2)
        during = sink.received[1]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        _verify_both(old_secret, during)  # receivers that have not switched yet
        _verify_both(new_secret, during)  # receivers that already have

        # Without a grace period the old secret stops signing at once.
        await client.post(
            f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}/secret/rotate",
            json={"grace_seconds": 0},
        )
        newest = (
            await client.get(f"/v1/tenants/{tenant}/endpoints/{endpoint['id']}/secret")
        ).json()
        await send(client, tenant)
        await eventually(lambda: len(sink.received) == 3)
        after = sink.received[2]
        _verify_both(newest["key"], after)
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            standardwebhooks.Webhook(new_secret).verify(after.body, after.headers)

        attempts = await attempts_of(client, tenant, first["id"])
        assert [(a["status"], a["response_status_code"]) for a in attempts] == [("succeeded", 200)]
        assert attempts[0]["response_body"] == "ok"
        message = (await client.get(f"/v1/tenants/{tenant}/messages/{first['id']}")).json()
        assert message["deliveries"][0]["status"] == "succeeded"


async def test_asymmetric_v1a_signatures_verify_with_cryptography(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url, asymmetric=True)
        public_key = endpoint["public_key"]
        assert public_key.startswith("whpk_")
        await send(client, tenant)
        await eventually(lambda: len(sink.received) == 1)
        item = sink.received[0]
        signatures = dict(part.split(",", 1) for part in item.headers["webhook-signature"].split())
        assert set(signatures) == {"v1", "v1a"}
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_") :]))
        signed = f"{item.headers['webhook-id']}.{item.headers['webhook-timestamp']}.".encode()
        key.verify(base64.b64decode(signatures["v1a"]), signed + item.body)
        with pytest.raises(InvalidSignature):
            key.verify(base64.b64decode(signatures["v1a"]), signed + item.body + b" ")
        standardwebhooks.Webhook(endpoint["secret"]).verify(item.body, item.headers)


async def test_endpoint_auth_filters_and_event_types(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        basic = await new_endpoint(
            client,
            tenant,
            url=sink.url + "/basic",
            event_types=["invoice.paid"],
            filter={"amount": {"$gte": 100}, "currency": {"$in": ["usd", "eur"]}},
            auth={"type": "basic", "username": "u", "password": "p"},
        )
        assert basic["auth_type"] == "basic" and "password" not in str(basic)
        await new_endpoint(
            client,
            tenant,
            url=sink.url + "/header",
            event_types=["invoice.voided"],
            auth={"type": "header", "name": "X-Api-Key", "value": "k-1"},
        )
        await send(client, tenant, payload={"amount": 50, "currency": "usd"})  # filtered out
        await send(client, tenant, payload={"amount": 150, "currency": "gbp"})  # filtered out
        wanted = await send(client, tenant, payload={"amount": 150, "currency": "eur"})
        voided = await send(client, tenant, event_type="invoice.voided", payload={})
        await eventually(lambda: len(sink.received) == 2)
        by_path = {item.path: item for item in sink.received}
        assert by_path["/hook/basic"].headers["webhook-id"] == wanted["id"]
        assert by_path["/hook/basic"].headers["Authorization"] == "Basic dTpw"
        assert by_path["/hook/header"].headers["webhook-id"] == voided["id"]
        assert by_path["/hook/header"].headers["X-Api-Key"] == "k-1"


async def test_a_delivery_shows_in_the_job_and_attempt_metrics(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url)
        await send(client, tenant)
        await eventually(lambda: len(sink.received) == 1)

        async def counted() -> bool:
            text = (await client.get("/metrics")).text
            return 'interlink_outbound_attempts_total{outcome="succeeded"} 1.0' in text

        await eventually(counted)
        text = (await client.get("/metrics")).text
    assert 'interlink_jobs_claimed_total{kind="outbound.deliver"} 1.0' in text
    assert 'interlink_jobs_succeeded_total{kind="outbound.deliver"} 1.0' in text
    assert 'interlink_job_duration_seconds_count{kind="outbound.deliver"} 1.0' in text
    assert 'interlink_job_claim_lag_seconds_bucket{kind="outbound.deliver",le="+Inf"} 1.0' in text
    assert "interlink_outbound_attempt_seconds_count 1.0" in text
    assert 'interlink_outbound_attempt_seconds_bucket{le="+Inf"} 1.0' in text
    assert "# TYPE interlink_jobs_succeeded_total counter" in text
    assert "# TYPE interlink_outbound_attempt_seconds histogram" in text
