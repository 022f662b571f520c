"""A provider's JSON nested deeper than Interlink writes again (``exact_json.MAX_DEPTH``): the
request is refused like malformed JSON, logged, and holds up nothing else; where JSON is not
required its payload is kept as text."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from interlink.exact_json import MAX_DEPTH
from interlink.runtime import Runtime
from interlink.webhooks.inbound import senders
from tests.integration.webhooks.inbound.conftest import eventually, list_events

RECEIVED = "dev.interlink.webhook.received"
MakeSource = Callable[..., Awaitable[dict[str, Any]]]


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def _event(event_id: str, levels: int) -> dict[str, Any]:
    # The event object and its data object are two levels; "object" holds the rest.
    return {"id": event_id, "type": "invoice.paid", "data": {"object": _nested(levels - 2)}}


async def test_a_payload_nested_too_deep_is_refused_and_holds_up_nothing(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    source = await make_source("stripe", "whsec_deep")
    deep = senders.sign_stripe("whsec_deep", _event("evt_deep", 600))
    deepest = [senders.sign_stripe("whsec_deep", _event("evt_edge", MAX_DEPTH + 1))]
    fits = [senders.sign_stripe("whsec_deep", _event("evt_fits", MAX_DEPTH))]
    plain = [senders.sign_stripe("whsec_deep", _event(f"evt_plain_{n}", 3)) for n in range(5)]
    signed = [deep, *deepest, *fits, *plain]

    answers = await asyncio.gather(
        *(client.post(f"/in/{source['id']}", content=s.body, headers=s.headers) for s in signed)
    )

    assert [a.status_code for a in answers] == [400, 400] + [200] * 6
    for answer in answers[:2]:
        assert answer.headers["content-type"] == "application/problem+json"
        assert f"nests JSON more than {MAX_DEPTH} levels deep" in answer.json()["detail"]
    rejected = await list_events(client, tenant, source["id"], status="rejected")
    assert len(rejected) == 2

    async def emitted() -> bool:
        events = await inbound_runtime.outbox.list(tenant_id=tenant, type_=RECEIVED)
        return len(events) == 6

    await eventually(emitted)
    events = await inbound_runtime.outbox.list(tenant_id=tenant, type_=RECEIVED)
    assert sorted(e["data"]["payload"]["id"] for e in events) == sorted(
        ["evt_fits"] + [f"evt_plain_{n}" for n in range(5)]
    )


async def test_where_json_is_not_required_a_too_deep_payload_is_kept_as_text(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    options = {"header": "X-Signature"}
    source = await make_source("hmac", "s3cret", options=options)
    signed = senders.sign_hmac("s3cret", options, {"deep": _nested(600)})

    answer = await client.post(
        f"/in/{source['id']}", content=signed.body, headers={**signed.headers,
                                                             "Content-Type": "text/plain"},
    )  # fmt: skip

    assert answer.status_code == 200, answer.text

    async def emitted() -> bool:
        events = await inbound_runtime.outbox.list(tenant_id=tenant, type_=RECEIVED)
        return len(events) == 1

    await eventually(emitted)
    (event,) = await inbound_runtime.outbox.list(tenant_id=tenant, type_=RECEIVED)
    assert event["data"]["payload"] == signed.body.decode()
