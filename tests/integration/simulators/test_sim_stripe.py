"""The Stripe simulator: Stripe's list paging, writes, idempotency, auth and error shapes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from interlink.simulators import RunningSimulator, serve_simulator
from tests.integration.simulators.conftest import FakeClock

KEY = {"Authorization": "Bearer sk_test_interlink"}


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[RunningSimulator]:
    async with serve_simulator("stripe", records=53, clock=clock) as running:
        yield running


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] = KEY, **params: str
) -> tuple[int, Any, Any]:
    async with http.get(url, params=params, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


@pytest.mark.parametrize("resource", ["customers", "invoices", "products", "charges"])
async def test_starting_after_walks_every_record_newest_first(
    sim: RunningSimulator, http: aiohttp.ClientSession, resource: str
) -> None:
    seen: list[dict[str, Any]] = []
    params = {"limit": "10"}
    pages = 0
    while pages < 20:  # a list that never ends stops here and fails the count below
        status, body, _ = await get(http, f"{sim.url}/v1/{resource}", **params)
        assert status == 200
        assert body["object"] == "list"
        assert body["url"] == f"/v1/{resource}"
        seen.extend(body["data"])
        pages += 1
        if not body["has_more"]:
            break
        params["starting_after"] = body["data"][-1]["id"]
    assert pages == 6
    assert len(seen) == 53
    assert len({item["id"] for item in seen}) == 53
    created = [item["created"] for item in seen]
    assert created == sorted(created, reverse=True)


async def test_ids_objects_and_references_are_realistic(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    _, customers, _ = await get(http, f"{sim.url}/v1/customers", limit="100")
    _, invoices, _ = await get(http, f"{sim.url}/v1/invoices", limit="100")
    _, products, _ = await get(http, f"{sim.url}/v1/products", limit="3")
    assert all(c["id"].startswith("cus_") and c["object"] == "customer" for c in customers["data"])
    assert all(i["id"].startswith("in_") for i in invoices["data"])
    assert all(
        p["id"].startswith("prod_") and p["updated"] >= p["created"] for p in products["data"]
    )
    customer_ids = {c["id"] for c in customers["data"]}
    assert {i["customer"] for i in invoices["data"]} <= customer_ids
    invoice = invoices["data"][0]
    assert invoice["total"] == sum(line["amount"] for line in invoice["lines"]["data"])


async def test_ending_before_pages_back_towards_newer_records(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    _, everything, _ = await get(http, f"{sim.url}/v1/customers", limit="100")
    ids = [c["id"] for c in everything["data"]]
    status, body, _ = await get(http, f"{sim.url}/v1/customers", limit="5", ending_before=ids[20])
    assert status == 200
    assert [c["id"] for c in body["data"]] == ids[15:20]
    assert body["has_more"] is True
    _, first, _ = await get(http, f"{sim.url}/v1/customers", limit="5", ending_before=ids[3])
    assert [c["id"] for c in first["data"]] == ids[0:3]
    assert first["has_more"] is False


async def test_created_filters_select_a_window(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    _, everything, _ = await get(http, f"{sim.url}/v1/charges", limit="100")
    pivot = everything["data"][10]["created"]
    _, newer, _ = await get(
        http, f"{sim.url}/v1/charges", limit="100", **{"created[gte]": str(pivot)}
    )
    assert [c["id"] for c in newer["data"]] == [c["id"] for c in everything["data"][:11]]
    _, older, _ = await get(
        http, f"{sim.url}/v1/charges", limit="100", **{"created[lt]": str(pivot)}
    )
    assert len(older["data"]) == 53 - 11


async def test_limit_bounds_and_default(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    _, body, _ = await get(http, f"{sim.url}/v1/customers")
    assert len(body["data"]) == 10
    status, body, _ = await get(http, f"{sim.url}/v1/customers", limit="101")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "limit"
    status, _, _ = await get(http, f"{sim.url}/v1/customers", limit="0")
    assert status == 400


async def test_retrieve_and_missing_resource(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    _, listing, _ = await get(http, f"{sim.url}/v1/customers", limit="1")
    customer = listing["data"][0]
    status, body, headers = await get(http, f"{sim.url}/v1/customers/{customer['id']}")
    assert (status, body) == (200, customer)
    assert headers["Request-Id"].startswith("req_")
    status, body, _ = await get(http, f"{sim.url}/v1/customers/cus_missing")
    assert status == 404
    assert body["error"]["code"] == "resource_missing"
    assert body["error"]["message"] == "No such customer: 'cus_missing'"


async def test_create_update_and_idempotency(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    form = {"name": "Ada Lovelace", "email": "ada@example.com", "metadata[tier]": "gold"}
    headers = {**KEY, "Idempotency-Key": "create-ada"}
    async with http.post(f"{sim.url}/v1/customers", data=form, headers=headers) as resp:
        assert resp.status == 200
        created = await resp.json()
    assert created["id"].startswith("cus_")
    assert created["metadata"] == {"tier": "gold"}
    assert created["created"] == 1_750_000_000
    async with http.post(f"{sim.url}/v1/customers", data=form, headers=headers) as resp:
        assert resp.headers["Idempotent-Replayed"] == "true"
        assert (await resp.json())["id"] == created["id"]
    async with http.post(
        f"{sim.url}/v1/customers", data={**form, "name": "Other"}, headers=headers
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "idempotency_error"
    _, listing, _ = await get(http, f"{sim.url}/v1/customers", limit="100")
    assert listing["data"][0]["id"] == created["id"]
    assert len(listing["data"]) == 54

    async with http.post(
        f"{sim.url}/v1/customers/{created['id']}",
        data={"phone": "+1-555-000-0000", "metadata[tier]": ""},
        headers=KEY,
    ) as resp:
        updated = await resp.json()
    assert updated["phone"] == "+1-555-000-0000"
    assert updated["metadata"] == {}
    assert updated["name"] == "Ada Lovelace"


async def test_unknown_parameter_is_refused(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{sim.url}/v1/customers", data={"nickname": "x"}, headers=KEY) as resp:
        body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "parameter_unknown"
    assert body["error"]["param"] == "nickname"


async def test_basic_auth_with_key_as_username(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    token = base64.b64encode(b"sk_test_interlink:").decode()
    status, _, _ = await get(
        http, f"{sim.url}/v1/products", headers={"Authorization": f"Basic {token}"}
    )
    assert status == 200


async def test_missing_and_invalid_keys(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    status, body, _ = await get(http, f"{sim.url}/v1/customers", headers={})
    assert status == 401
    assert body["error"]["message"].startswith("You did not provide an API key.")
    status, body, _ = await get(
        http, f"{sim.url}/v1/customers", headers={"Authorization": "Bearer sk_live_nope1234"}
    )
    assert status == 401
    assert body["error"]["message"].startswith("Invalid API Key provided: sk_live_")


async def test_expiring_tokens_answer_api_key_expired(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sim.simulator.set_faults("expiring_tokens")
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    status, _, _ = await get(http, f"{sim.url}/v1/customers", headers=headers)
    assert status == 200
    clock.now += 6
    status, body, _ = await get(http, f"{sim.url}/v1/customers", headers=headers)
    assert status == 401
    assert body["error"]["code"] == "api_key_expired"


async def test_rate_limit_profile_answers_stripe_429(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.set_faults("rate_limit", rate_limit_every=3)
    statuses = []
    for _ in range(6):
        status, body, headers = await get(http, f"{sim.url}/v1/customers")
        statuses.append(status)
        if status == 429:
            assert headers["Retry-After"] == "2"
            assert body["error"]["code"] == "rate_limit"
            assert body["error"]["type"] == "invalid_request_error"
    assert statuses == [200, 200, 429, 200, 200, 429]
    assert sim.simulator.count("/v1/customers", 429) == 2


async def test_deauthorize_revokes_connect_tokens(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        token = (await resp.json())["access_token"]
    assert token.startswith("sk_test_")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await get(http, f"{sim.url}/v1/balance", headers=headers))[0] == 200
    async with http.post(f"{sim.url}/oauth/deauthorize", data={"stripe_user_id": "acct_1"}) as resp:
        assert await resp.json() == {"stripe_user_id": "acct_1"}
    assert (await get(http, f"{sim.url}/v1/balance", headers=headers))[0] == 401


async def test_unknown_url_in_stripe_shape(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await get(http, f"{sim.url}/v1/widgets/x/y")
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/widgets/x/y)")
