"""The management API: sources, destinations, log; isolation, audit, validation, no 5xx."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from interlink.audit import list_actions
from interlink.runtime import Runtime
from interlink.webhooks.inbound import senders

MakeSource = Callable[..., Awaitable[dict[str, Any]]]


async def test_source_lifecycle_never_returns_the_secret_and_is_audited(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    source = await make_source("stripe", "whsec_lifecycle", name="Stripe live")
    base = f"/v1/tenants/{tenant}/sources"
    assert source["ingest_url"] == f"https://hooks.example.com/in/{source['id']}"
    assert source["id"].startswith("src_")

    listed = await client.get(base)
    fetched = await client.get(f"{base}/{source['id']}")
    patched = await client.patch(
        f"{base}/{source['id']}", json={"enabled": False, "rate_limit": {"per_second": 5}}
    )
    for answer in (listed, fetched, patched):
        assert answer.status_code == 200
        assert "whsec_lifecycle" not in answer.text
        assert '"secret"' not in answer.text
    assert patched.json()["enabled"] is False
    assert patched.json()["rate_limit"] == {"per_second": 5.0, "burst": None}
    signed = senders.sign_stripe("whsec_lifecycle")
    disabled = await client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)
    assert disabled.status_code == 404

    deleted = await client.delete(f"{base}/{source['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"{base}/{source['id']}")).status_code == 404
    async with inbound_runtime.db.transaction() as conn:
        actions = [
            a["action"] for a in await list_actions(conn, tenant_id=tenant, after=None, limit=50)
        ]
    assert {"source.created", "source.updated", "source.deleted"} <= set(actions)


async def test_invalid_input_is_refused_with_problems_never_5xx(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    base = f"/v1/tenants/{tenant}/sources"
    source = await make_source("hmac", "s3cret", options={"header": "X-Signature"})
    bad_bodies: list[Any] = [
        {"provider": "paypal", "secret": "x"},
        {"provider": "stripe", "secret": ""},
        {"provider": "stripe", "secret": "a\u0000b"},
        {"provider": "stripe", "secret": "x", "max_body_bytes": 10**30},
        {"provider": "stripe", "secret": "x", "options": {"tolerance_seconds": -1}},
        {"provider": "hmac", "secret": "x", "options": {"algorithm": "md5"}},
        {"provider": "stripe", "secret": "x", "unknown": 1},
        {"provider": "stripe", "secret": "x", "name": "n\u0000"},
        [],
    ]
    raw = b'{"provider": "stripe", "secret": "x", "rate_limit": {"per_second": 1e400}}'
    answer = await client.post(base, content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    for body in bad_bodies:
        answer = await client.post(base, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    events = f"{base}/{source['id']}/events"
    queries: list[dict[str, Any]] = [
        {"status": "weird"},
        {"since": "yesterday"},
        {"limit": 10**12},
        {"event_type": "a\u0000"},
        {"cursor": "%%%"},
        {"since": "9999-12-31T23:59:59-05:00"},
    ]
    for params in queries:
        answer = await client.get(events, params=params)
        assert 400 <= answer.status_code < 500, (params, answer.text)
    for path in (f"{base}/src_%00", f"{events}/evt_%00", f"{base}/{'x' * 500}"):
        answer = await client.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    destinations = f"{base}/{source['id']}/destinations"
    for body in (
        {"url": "ftp://x"},
        {"url": "http://169.254.169.254/latest"},
        {"url": "http://127.0.0.1:9/x", "filter": {"a": {"$regex": "x"}}},
        {"url": "http://127.0.0.1:9/x", "event_types": ["in*voice"]},
    ):
        answer = await client.post(destinations, json=body)
        assert answer.status_code == 422, (body, answer.text)


async def test_every_route_answers_404_for_another_tenants_resources(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    source = await make_source("stripe", "whsec_iso")
    signed = senders.sign_stripe("whsec_iso")
    event_id = (
        await client.post(f"/in/{source['id']}", content=signed.body, headers=signed.headers)
    ).json()["id"]
    destination = (
        await client.post(
            f"/v1/tenants/{tenant}/sources/{source['id']}/destinations",
            json={"url": "http://127.0.0.1:9/hook"},
        )
    ).json()
    other = (await client.post("/v1/tenants", json={"name": "Other"})).json()["id"]
    key = (await client.post(f"/v1/tenants/{other}/api-keys", json={})).json()["key"]

    src = source["id"]
    routes = [
        ("GET", f"/v1/tenants/{tenant}/sources", None),
        ("POST", f"/v1/tenants/{tenant}/sources", {"provider": "stripe", "secret": "x"}),
        ("GET", f"/v1/tenants/{tenant}/sources/{src}", None),
        ("GET", f"/v1/tenants/{other}/sources/{src}", None),
        ("PATCH", f"/v1/tenants/{other}/sources/{src}", {"enabled": False}),
        ("DELETE", f"/v1/tenants/{other}/sources/{src}", None),
        ("POST", f"/v1/tenants/{other}/sources/{src}/secret/rotate", {"secret": "y"}),
        ("GET", f"/v1/tenants/{other}/sources/{src}/events", None),
        ("GET", f"/v1/tenants/{other}/sources/{src}/events/{event_id}", None),
        ("POST", f"/v1/tenants/{other}/sources/{src}/events/{event_id}/replay", None),
        ("POST", f"/v1/tenants/{other}/sources/{src}/replay", {"since": "2020-01-01T00:00:00Z"}),
        ("GET", f"/v1/tenants/{other}/sources/{src}/destinations", None),
        ("POST", f"/v1/tenants/{other}/sources/{src}/destinations", {"url": "http://127.0.0.1:9/"}),
        ("GET", f"/v1/tenants/{other}/sources/{src}/destinations/{destination['id']}", None),
        ("GET", f"/v1/tenants/{other}/sources/{src}/destinations/{destination['id']}/secret", None),
        (
            "PATCH",
            f"/v1/tenants/{other}/sources/{src}/destinations/{destination['id']}",
            {"enabled": False},
        ),
        ("DELETE", f"/v1/tenants/{other}/sources/{src}/destinations/{destination['id']}", None),
    ]
    intruder = {"Authorization": f"Bearer {key}"}
    for method, path, body in routes:
        answer = await client.request(method, path, json=body, headers=intruder)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    # The owner still sees everything unchanged.
    detail = await client.get(f"/v1/tenants/{tenant}/sources/{src}/events/{event_id}")
    assert detail.status_code == 200
    assert detail.json()["replay_count"] == 0
    assert detail.json()["headers"]["stripe-signature"] == "[redacted]"
    assert (await client.get(f"/v1/tenants/{tenant}/sources/{src}")).json()["enabled"] is True


async def test_log_filters_and_cursor_pagination(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    source = await make_source("stripe", "whsec_pages", rate_limit={"per_second": 1000})
    ids = []
    for _ in range(5):
        signed = senders.sign_stripe("whsec_pages")
        ids.append(
            (
                await client.post(
                    f"/in/{source['id']}", content=signed.body, headers=signed.headers
                )
            ).json()["id"]
        )
    url = f"/v1/tenants/{tenant}/sources/{source['id']}/events"
    seen: list[str] = []
    cursor = None
    for _ in range(10):  # five events, two a page: a cursor that never runs out fails here
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(url, params=params)).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    else:
        raise AssertionError(f"the cursor did not run out after 10 pages: {seen}")
    # The log is ordered by id: by the millisecond of arrival, then (two webhooks in the same
    # millisecond, which a fast machine posts) by the id's random part.
    assert seen == sorted(ids, reverse=True) and len(set(seen)) == 5
    ascending = (await client.get(url, params={"order": "asc"})).json()["data"]
    assert [row["id"] for row in ascending] == sorted(ids)
    assert (await client.get(url, params={"event_type": "invoice.paid"})).json()["data"]
    assert not (await client.get(url, params={"event_type": "charge.failed"})).json()["data"]
    assert not (await client.get(url, params={"until": "2000-01-01T00:00:00"})).json()["data"]
    one = (await client.get(url, params={"limit": 1})).json()["data"][0]
    by_delivery = (await client.get(url, params={"delivery_id": one["delivery_id"]})).json()["data"]
    assert [row["id"] for row in by_delivery] == [one["id"]]


async def test_the_log_finds_events_by_delivery_ids_of_every_length(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    # Ids of up to 150 characters are their own dedupe key; longer ones are keyed by their
    # digest, and over 200 characters they are stored clipped.
    source = await make_source("stripe", "whsec_ids", rate_limit={"per_second": 1000})
    url = f"/v1/tenants/{tenant}/sources/{source['id']}/events"
    stored = {}
    for delivery in ("evt_short", "evt_" + "m" * 166, "evt_" + "l" * 260, "evt_" + "k" * 196):
        payload = {**senders.sample_stripe_event(0), "id": delivery}
        signed = senders.sign_stripe("whsec_ids", payload)
        answer = await client.post(
            f"/in/{source['id']}", content=signed.body, headers=signed.headers
        )
        assert answer.status_code == 200, answer.text
        stored[delivery] = answer.json()["id"]
    for delivery, event_id in stored.items():
        shown = delivery[:200]
        found = (await client.get(url, params={"delivery_id": shown})).json()["data"]
        assert [(row["id"], row["delivery_id"]) for row in found] == [(event_id, shown)]
    assert not (await client.get(url, params={"delivery_id": "evt_" + "l" * 150})).json()["data"]
