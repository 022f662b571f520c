"""The HubSpot simulator: CRM v3 cursor paging, writes, search, limits headers and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from interlink.simulators import RunningSimulator, serve_simulator
from tests.integration.simulators.conftest import FakeClock


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[RunningSimulator]:
    async with serve_simulator("hubspot", records=47, clock=clock) as running:
        yield running


@pytest.fixture
async def auth(http: aiohttp.ClientSession, sim: RunningSimulator) -> dict[str, str]:
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        token = (await resp.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], **kwargs: Any
) -> tuple[int, Any, Any]:
    async with http.request(method, url, headers=headers, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body, resp.headers


@pytest.mark.parametrize("object_type", ["contacts", "companies"])
async def test_after_cursor_walks_every_record(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str], object_type: str
) -> None:
    url = f"{sim.url}/crm/v3/objects/{object_type}"
    params = {"limit": "10"}
    results: list[dict[str, Any]] = []
    pages = 0
    while pages < 20:  # a list that never ends stops here and fails the count below
        status, body, _ = await call(http, "GET", url, auth, params=params)
        assert status == 200
        results.extend(body["results"])
        pages += 1
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
        assert body["paging"]["next"]["link"] == f"{url}?after={after}"
        params["after"] = after
    assert pages == 5
    assert len({r["id"] for r in results}) == 47
    first = results[0]
    assert set(first) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert first["archived"] is False
    assert first["properties"]["hs_object_id"] == first["id"]


async def test_properties_parameter_selects_properties(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    url = f"{sim.url}/crm/v3/objects/contacts"
    _, default, _ = await call(http, "GET", url, auth, params={"limit": "1"})
    assert set(default["results"][0]["properties"]) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
    }  # fmt: skip
    _, chosen, _ = await call(
        http, "GET", url, auth, params={"limit": "1", "properties": "email,phone"}
    )
    assert set(chosen["results"][0]["properties"]) == {"email", "phone"}


async def test_rate_limit_headers_on_every_api_answer(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    url = f"{sim.url}/crm/v3/objects/companies"
    _, _, first = await call(http, "GET", url, auth)
    _, _, second = await call(http, "GET", url, auth)
    assert first["X-HubSpot-RateLimit-Max"] == "110"
    assert first["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first["X-HubSpot-RateLimit-Daily"] == "250000"
    assert (
        int(second["X-HubSpot-RateLimit-Remaining"])
        == int(first["X-HubSpot-RateLimit-Remaining"]) - 1
    )
    assert int(second["X-HubSpot-RateLimit-Daily-Remaining"]) == 250000 - 2


async def test_patch_updates_properties_and_modified_dates(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    _, listing, _ = await call(http, "GET", f"{sim.url}/crm/v3/objects/contacts", auth)
    contact_id = listing["results"][0]["id"]
    url = f"{sim.url}/crm/v3/objects/contacts/{contact_id}"
    status, updated, _ = await call(
        http, "PATCH", url, auth, json={"properties": {"jobtitle": "CFO"}}
    )
    assert status == 200
    assert updated["properties"]["jobtitle"] == "CFO"
    assert updated["updatedAt"] == "2025-06-15T15:06:40.000Z"
    assert updated["properties"]["lastmodifieddate"] == "2025-06-15T15:06:40.000Z"
    status, body, _ = await call(
        http, "PATCH", url, auth, json={"properties": {"favourite_colour": "teal"}}
    )
    assert status == 400
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]
    assert body["correlationId"]
    status, body, _ = await call(http, "GET", f"{sim.url}/crm/v3/objects/contacts/999", auth)
    assert (status, body["category"]) == (404, "OBJECT_NOT_FOUND")


async def test_search_finds_recently_modified_records(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    _, listing, _ = await call(http, "GET", f"{sim.url}/crm/v3/objects/contacts", auth)
    contact_id = listing["results"][3]["id"]
    await call(
        http,
        "PATCH",
        f"{sim.url}/crm/v3/objects/contacts/{contact_id}",
        auth,
        json={"properties": {"phone": "+1-555-111-2222"}},
    )
    query = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "lastmodifieddate",
                        "operator": "GTE",
                        "value": "1749999999000",
                    }
                ]
            }
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["phone"],
        "limit": 5,
    }
    status, found, _ = await call(
        http, "POST", f"{sim.url}/crm/v3/objects/contacts/search", auth, json=query
    )
    assert status == 200
    assert found["total"] == 1
    assert found["results"][0]["id"] == contact_id
    assert found["results"][0]["properties"] == {"phone": "+1-555-111-2222"}
    everything = {**query, "filterGroups": [], "limit": 20}
    _, page, _ = await call(
        http, "POST", f"{sim.url}/crm/v3/objects/contacts/search", auth, json=everything
    )
    assert page["total"] == 47
    assert page["paging"]["next"]["after"] == "20"


async def test_create_contact(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    status, created, _ = await call(
        http,
        "POST",
        f"{sim.url}/crm/v3/objects/contacts",
        auth,
        json={"properties": {"email": "grace@example.com", "firstname": "Grace"}},
    )
    assert status == 201
    assert created["properties"]["email"] == "grace@example.com"
    status, fetched, _ = await call(
        http, "GET", f"{sim.url}/crm/v3/objects/contacts/{created['id']}", auth
    )
    assert (status, fetched["id"]) == (200, created["id"])


async def test_expired_token_answers_expired_authentication(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: FakeClock
) -> None:
    sim.simulator.set_faults("expiring_tokens")
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        tokens = await resp.json()
    assert tokens["expires_in"] == 5
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    url = f"{sim.url}/crm/v3/objects/contacts"
    assert (await call(http, "GET", url, headers))[0] == 200
    clock.now += 7
    status, body, _ = await call(http, "GET", url, headers)
    assert status == 401
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"] == "The OAuth token used to make this call expired 2 second(s) ago."
    status, body, _ = await call(http, "GET", url, {"Authorization": "Bearer nope"})
    assert (status, body["category"]) == (401, "INVALID_AUTHENTICATION")


async def test_default_tokens_live_thirty_minutes(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        tokens = await resp.json()
    assert tokens["expires_in"] == 1800
    assert tokens["token_type"] == "bearer"
    async with http.get(f"{sim.url}/oauth/v1/access-tokens/{tokens['access_token']}") as resp:
        info = await resp.json()
    assert info["hub_id"] == 12345678
    assert info["expires_in"] == 1800


async def test_revoking_the_refresh_token(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        tokens = await resp.json()
    url = f"{sim.url}/oauth/v1/refresh-tokens/{tokens['refresh_token']}"
    async with http.delete(url) as resp:
        assert resp.status == 204
    status, _, _ = await call(
        http,
        "GET",
        f"{sim.url}/crm/v3/objects/contacts",
        {"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert status == 401


async def test_rate_limit_profile_answers_hubspot_429(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    async with http.put(
        f"{sim.url}/_sim/faults", json={"profiles": ["rate_limit"], "rate_limit_every": 2}
    ) as resp:
        assert (await resp.json())["rate_limit_every"] == 2
    url = f"{sim.url}/crm/v3/objects/contacts"
    assert (await call(http, "GET", url, auth))[0] == 200
    status, body, headers = await call(http, "GET", url, auth)
    assert status == 429
    assert headers["Retry-After"] == "2"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "X-HubSpot-RateLimit-Remaining" in headers
