"""Integers beyond 64 bits in a provider's payload stay exact end to end, on both stores: in the
``webhook.received`` event as stored and read back, in routing, and in its outbound fan-out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from interlink.runtime import Runtime
from interlink.webhooks.inbound import senders
from interlink.webhooks.inbound.capability import capability as inbound_capability
from interlink.webhooks.outbound.capability import capability as outbound_capability
from tests.integration.webhooks.inbound.conftest import eventually, hub_with
from tests.integration.webhooks.outbound.outbound_support import Receiver, new_endpoint, receiver

SECRET = "whsec_big_integers"
RECEIVED = "dev.interlink.webhook.received"
AMOUNT = 123456789012345678901234  # orjson reads 1.2345678901234569e+23
BALANCE = -(2**63) - 1  # orjson reads the float -2**63, which is not below -2**63
EVENT = {
    "id": "evt_big_integers",
    "object": "event",
    "type": "invoice.paid",
    "livemode": False,
    "data": {
        "object": {
            "id": "in_1",
            "amount_due": AMOUNT,
            "balance": BALANCE,
            "lines": [2**64, {"amount": -AMOUNT}],
        }
    },
}


@pytest.fixture
async def hub(db_url: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """Inbound and outbound webhooks, workers on: received events fan out to endpoints."""
    async with hub_with(
        db_url, [inbound_capability, outbound_capability], run_workers=True
    ) as pair:
        yield pair


async def _created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    answer = await client.post(path, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _exact(payload: Any) -> None:
    assert payload == EVENT
    assert type(payload["data"]["object"]["amount_due"]) is int
    assert type(payload["data"]["object"]["balance"]) is int


def _delivered(sink: Receiver, path: str) -> list[bytes]:
    return [item.body for item in sink.received if item.path == f"/hook/{path}"]


async def test_a_webhook_with_integers_beyond_64_bits_keeps_them_exact_end_to_end(
    hub: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = hub
    async with receiver() as sink:
        tenant = (await _created(client, "/v1/tenants", {"name": "Acme"}))["id"]
        source = await _created(
            client, f"/v1/tenants/{tenant}/sources", {"provider": "stripe", "secret": SECRET}
        )
        base = f"/v1/tenants/{tenant}/sources/{source['id']}"
        # Only the exact balance tells these apart: its float is -2**63 itself.
        below = await _created(
            client,
            f"{base}/destinations",
            {"url": f"{sink.url}/below", "filter": {"data.object.balance": {"$lt": -(2**63)}}},
        )
        await _created(
            client,
            f"{base}/destinations",
            {"url": f"{sink.url}/above", "filter": {"data.object.balance": {"$gte": -(2**63)}}},
        )
        await new_endpoint(client, tenant, url=f"{sink.url}/endpoint", event_types=[RECEIVED])

        signed = senders.sign_stripe(SECRET, EVENT)
        assert str(AMOUNT).encode() in signed.body
        answer = await client.post(
            f"/in/{source['id']}", content=signed.body, headers=signed.headers
        )
        assert answer.status_code == 200, answer.text
        event_id = answer.json()["id"]

        async def handled(times: int) -> bool:
            detail = (await client.get(f"{base}/events/{event_id}")).json()
            forwards = detail["forwards"]
            return (
                len(forwards) == times
                and all(f["status"] == "succeeded" for f in forwards)
                and len(_delivered(sink, "endpoint")) == times
            )

        await eventually(lambda: handled(1))
        # Routed on the exact value: to "below" only, with the provider's bytes.
        detail = (await client.get(f"{base}/events/{event_id}")).json()
        assert [f["destination_id"] for f in detail["forwards"]] == [below["id"]]
        assert _delivered(sink, "below") == [signed.body]
        assert _delivered(sink, "above") == []

        # Replayed: emitted and routed again from the stored body.
        assert (await client.post(f"{base}/events/{event_id}/replay")).status_code == 202
        await eventually(lambda: handled(2))
        assert _delivered(sink, "above") == []

        # The events as stored and read back, by the outbox and by the API.
        events = await runtime.outbox.list(tenant_id=tenant, type_=RECEIVED)
        assert sorted(e["data"]["replay"] for e in events) == [0, 1]
        for event in events:
            _exact(event["data"]["payload"])
        listed = await client.get(f"/v1/tenants/{tenant}/events", params={"type": RECEIVED})
        assert listed.status_code == 200, listed.text
        for event in json.loads(listed.content)["data"]:
            _exact(event["data"]["payload"])

        # Fanned out to the endpoint: the body carries the very digits.
        for body in _delivered(sink, "endpoint"):
            assert b'"amount_due":123456789012345678901234' in body
            assert b'"balance":-9223372036854775809' in body
            _exact(json.loads(body)["data"]["data"]["payload"])
