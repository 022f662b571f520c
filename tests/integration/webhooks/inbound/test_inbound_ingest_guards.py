"""Guards of ``POST /in/{source_id}``: size, JSON, signature, staleness, rate, unknown, dedupe."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from interlink.runtime import Runtime
from interlink.webhooks.inbound import senders
from tests.integration.webhooks.inbound.conftest import eventually, list_events

MakeSource = Callable[..., Awaitable[dict[str, Any]]]
SECRET = "whsec_guards"


async def test_oversized_malformed_unsigned_stale_and_flood(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    source = await make_source(
        "stripe", SECRET, max_body_bytes=2048, rate_limit={"per_second": 1, "burst": 8}
    )
    url = f"/in/{source['id']}"
    big = senders.sign_stripe(SECRET, {"id": "evt_big", "type": "x", "pad": "a" * 4096})
    bad_json = senders.sign_stripe(SECRET)
    bad_json_body = b"{not json"
    stamp = int(time.time())
    import hashlib
    import hmac

    bad_sig = hmac.new(SECRET.encode(), f"{stamp}.".encode() + bad_json_body, hashlib.sha256)
    malformed_headers = {
        **bad_json.headers,
        "Stripe-Signature": f"t={stamp},v1={bad_sig.hexdigest()}",
    }
    stale = senders.sign_stripe(SECRET, timestamp=stamp - 3600)

    oversized = await client.post(url, content=big.body, headers=big.headers)
    malformed = await client.post(url, content=bad_json_body, headers=malformed_headers)
    unsigned = await client.post(
        url, content=bad_json.body, headers={"Content-Type": "application/json"}
    )
    stale_answer = await client.post(url, content=stale.body, headers=stale.headers)
    flood = [await client.post(url, content=b"{}") for _ in range(10)]

    assert oversized.status_code == 413
    assert malformed.status_code == 400
    assert malformed.json()["check"] == "malformed_payload"
    assert unsigned.status_code == 401
    assert unsigned.json()["check"] == "missing_header"
    assert "Stripe-Signature" in unsigned.json()["detail"]
    assert stale_answer.status_code == 401
    assert stale_answer.json()["check"] == "stale_timestamp"
    limited = [r for r in flood if r.status_code == 429]
    assert limited, [r.status_code for r in flood]
    assert int(limited[0].headers["Retry-After"]) >= 1
    for answer in (oversized, malformed, unsigned, stale_answer, limited[0]):
        assert answer.headers["content-type"] == "application/problem+json"
    rejected = await list_events(client, tenant, source["id"], status="rejected")
    assert {"malformed_payload", "missing_header", "stale_timestamp"} <= {
        row["failed_check"] for row in rejected
    }
    assert not await list_events(client, tenant, source["id"], status="accepted")


async def test_unknown_disabled_and_malformed_ids_answer_404(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    source = await make_source("stripe", SECRET, enabled=False)
    signed = senders.sign_stripe(SECRET)
    for path in (
        f"/in/{source['id']}",
        "/in/src_01J000000000000000000000000",
        "/in/not-an-id",
        "/in/" + "x" * 300,
        "/in/src_%00",
    ):
        answer = await client.post(path, content=signed.body, headers=signed.headers)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


async def test_duplicate_storm_is_stored_once_processed_once_and_counted(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    source = await make_source("stripe", SECRET, rate_limit={"per_second": 10000})
    signed = senders.sign_stripe(SECRET)

    answers = await asyncio.gather(
        *(
            client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)
            for _ in range(100)
        )
    )

    assert {a.status_code for a in answers} == {200}
    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("accepted") == 1
    assert statuses.count("duplicate") == 99
    assert len({a.json()["id"] for a in answers}) == 1
    [event] = await list_events(client, tenant, source["id"])
    assert event["seen_count"] == 100

    async def processed() -> bool:
        [row] = await list_events(client, tenant, source["id"])
        return bool(row["processing_status"] == "processed")

    await eventually(processed)
    received = await inbound_runtime.outbox.list(
        tenant_id=tenant, type_="dev.interlink.webhook.received"
    )
    assert len(received) == 1
    # Without destinations there is nothing to route: the event was processed by the
    # transaction that stored it, and no job was needed.
    assert await inbound_runtime.queue.list(kind="inbound.process", tenant_id=tenant) == []
    assert (await list_events(client, tenant, source["id"], status="duplicate"))[0]["id"] == event[
        "id"
    ]


async def test_rejections_are_sampled_and_emit_auth_failed(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    source = await make_source("github", "gh-secret", rate_limit={"per_second": 10000})
    body = json.dumps({"zen": "Keep it logically awesome."}).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "ping"}

    answers = [
        await client.post(f"/in/{source['id']}", content=body, headers=headers) for _ in range(60)
    ]

    assert {a.status_code for a in answers} == {401}
    logged = await list_events(client, tenant, source["id"], status="rejected")
    # A burst of 20 is written, the rest only counted: a flood cannot fill the disk.
    assert 20 <= len(logged) < 60
    failed = await inbound_runtime.outbox.list(tenant_id=tenant, type_="dev.interlink.auth.failed")
    assert len(failed) == len(logged)
    assert failed[0]["data"]["check"] == "signature_mismatch"
    assert failed[0]["subject"] == source["id"]


async def test_rotated_secret_keeps_the_old_one_valid_during_the_grace_period(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    source = await make_source("stripe", "whsec_old")
    base = f"/v1/tenants/{tenant}/sources/{source['id']}/secret/rotate"
    rotated = await client.post(base, json={"secret": "whsec_new", "grace_seconds": 3600})
    assert rotated.status_code == 200
    assert "secret" not in rotated.json()
    assert rotated.json()["previous_secret_expires_at"]

    for secret in ("whsec_new", "whsec_old"):
        signed = senders.sign_stripe(secret)
        answer = await client.post(
            f"/in/{source['id']}", content=signed.body, headers=signed.headers
        )
        assert answer.status_code == 200, (secret, answer.text)

    await client.post(base, json={"secret": "whsec_newest"})
    signed = senders.sign_stripe("whsec_new")
    answer = await client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)
    assert answer.status_code == 401
