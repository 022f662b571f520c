"""``/in/`` is served by a raw ASGI app ahead of FastAPI: what it keeps of the API's manners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import select

from interlink.runtime import Runtime
from interlink.store.schema import events
from interlink.webhooks.inbound import senders
from tests.integration.webhooks.inbound.conftest import eventually

MakeSource = Callable[..., Awaitable[dict[str, Any]]]
SECRET = "whsec_fast_path"


async def test_ingest_keeps_request_ids_problems_and_the_openapi_entry(
    client: httpx.AsyncClient, make_source: MakeSource
) -> None:
    source = await make_source("stripe", SECRET)
    url = f"/in/{source['id']}"
    signed = senders.sign_stripe(SECRET)

    accepted = await client.post(url, content=signed.body, headers=signed.headers)
    refused = await client.post(url, content=signed.body, headers={"X-Request-ID": "req-42"})
    wrong_method = await client.get(url)

    assert accepted.status_code == 200
    assert accepted.headers["content-type"] == "application/json"
    assert accepted.json()["status"] == "accepted"
    assert len(accepted.headers["x-request-id"]) == 24
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "req-42"
    assert refused.json()["request_id"] == "req-42"
    assert refused.json()["instance"] == url
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.headers["content-type"] == "application/problem+json"
    assert wrong_method.json()["type"].endswith("/method-not-allowed")
    operation = (await client.get("/openapi.json")).json()["paths"]["/in/{source_id}"]["post"]
    assert operation["operationId"] == "ingest_webhook"
    metrics = (await client.get("/metrics")).text
    assert 'route="/in/*"' in metrics
    assert 'interlink_inbound_requests_total{outcome="accepted",provider="stripe"} 1.0' in metrics


async def test_a_body_sent_in_chunks_is_read_whole_and_verified(
    client: httpx.AsyncClient, make_source: MakeSource
) -> None:
    source = await make_source("stripe", SECRET)
    signed = senders.sign_stripe(SECRET)

    async def chunks() -> Any:
        for start in range(0, len(signed.body), 7):
            yield signed.body[start : start + 7]

    answer = await client.post(f"/in/{source['id']}", content=chunks(), headers=signed.headers)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"


async def test_a_received_event_nobody_takes_is_stored_relayed_by_the_group_commit(
    client: httpx.AsyncClient, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    source = await make_source("stripe", SECRET)
    signed = senders.sign_stripe(SECRET)

    answer = await client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)

    assert answer.status_code == 200, answer.text

    async def relayed() -> list[Any]:
        query = select(events.c.relayed, events.c.relayed_at, events.c.time).where(
            events.c.type == "dev.interlink.webhook.received"
        )
        async with inbound_runtime.db.transaction() as conn:
            return list((await conn.execute(query)).all())

    if inbound_runtime.db.is_postgres:  # the relay marks it, after the ack
        await eventually(lambda: _all_relayed(relayed))
    else:  # no subscriber takes it: written relayed in the commit that acknowledged it
        [(done, relayed_at, moment)] = await relayed()
        assert done and relayed_at == moment


async def _all_relayed(rows: Callable[[], Awaitable[list[Any]]]) -> bool:
    found = await rows()
    return bool(found) and all(row[0] for row in found)
