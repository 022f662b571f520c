"""The Salesforce simulator: SOQL with query locators, sobjects, sessions and limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from interlink.simulators import SIM_CLIENT_ID, SIM_CLIENT_SECRET, RunningSimulator, serve_simulator
from tests.integration.simulators.conftest import FakeClock

DATA = "/services/data/v61.0"


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[RunningSimulator]:
    async with serve_simulator("salesforce", records=450, clock=clock) as running:
        yield running


async def client_credentials(http: aiohttp.ClientSession, sim: RunningSimulator) -> dict[str, Any]:
    form = {
        "grant_type": "client_credentials",
        "client_id": SIM_CLIENT_ID,
        "client_secret": SIM_CLIENT_SECRET,
    }
    async with http.post(f"{sim.url}/services/oauth2/token", data=form) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


@pytest.fixture
async def auth(http: aiohttp.ClientSession, sim: RunningSimulator) -> dict[str, str]:
    token = (await client_credentials(http, sim))["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def query(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], soql: str | None = None
) -> tuple[int, Any, Any]:
    params = {"q": soql} if soql is not None else None
    async with http.get(url, params=params, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_token_response_has_salesforce_fields_and_no_expires_in(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    body = await client_credentials(http, sim)
    assert body["instance_url"] == sim.url
    assert body["token_type"] == "Bearer"
    assert body["id"].startswith(f"{sim.url}/id/00D")
    assert body["issued_at"] == "1750000000000"
    assert "expires_in" not in body
    expected = hmac.new(
        SIM_CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected


async def test_query_pages_through_every_record_by_next_records_url(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    headers = {**auth, "Sforce-Query-Options": "batchSize=200"}
    status, page, _ = await query(
        http, f"{sim.url}{DATA}/query", headers, "SELECT Id, Name, LastModifiedDate FROM Account"
    )
    assert status == 200
    records = list(page["records"])
    pages = 1
    while not page["done"]:
        assert page["nextRecordsUrl"].startswith(f"{DATA}/query/01g")
        status, page, _ = await query(http, sim.url + page["nextRecordsUrl"], headers)
        assert status == 200
        assert page["totalSize"] == 450
        records.extend(page["records"])
        pages += 1
    assert pages == 3
    assert "nextRecordsUrl" not in page
    assert len({r["Id"] for r in records}) == 450
    first = records[0]
    assert set(first) == {"attributes", "Id", "Name", "LastModifiedDate"}
    assert first["attributes"] == {
        "type": "Account",
        "url": f"{DATA}/sobjects/Account/{first['Id']}",
    }


async def test_where_order_and_limit(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    url = f"{sim.url}{DATA}/query"
    _, everything, _ = await query(http, url, auth, "SELECT Id, LastModifiedDate FROM Contact")
    stamps = sorted(r["LastModifiedDate"] for r in everything["records"])
    pivot = stamps[300]  # e.g. 2024-09-01T10:00:00.000+0000
    literal = pivot[:19] + "Z"
    _, newer, _ = await query(
        http,
        url,
        auth,
        f"select id, lastmodifieddate from contact where LastModifiedDate > {literal} "
        "order by LastModifiedDate desc limit 50",
    )
    got = [r["LastModifiedDate"] for r in newer["records"]]
    assert newer["totalSize"] == len(got) == 50
    assert got == sorted(got, reverse=True)
    assert all(stamp > literal.replace("Z", "") for stamp in got)
    assert got[0] == stamps[-1]


async def test_string_condition(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    url = f"{sim.url}{DATA}/query"
    _, everything, _ = await query(http, url, auth, "SELECT Id, Email FROM Contact LIMIT 1")
    email = everything["records"][0]["Email"]
    _, one, _ = await query(http, url, auth, f"SELECT Id FROM Contact WHERE Email = '{email}'")
    assert [r["Id"] for r in one["records"]] == [everything["records"][0]["Id"]]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Nope FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
        ("DELETE FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name ~ 'x'", "MALFORMED_QUERY"),
    ],
)
async def test_bad_queries_answer_salesforce_errors(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str], soql: str, code: str
) -> None:
    status, body, _ = await query(http, f"{sim.url}{DATA}/query", auth, soql)
    assert status == 400
    assert isinstance(body, list)
    assert body[0]["errorCode"] == code
    assert body[0]["message"]


async def test_get_and_patch_contact(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str], clock: FakeClock
) -> None:
    _, listing, _ = await query(
        http, f"{sim.url}{DATA}/query", auth, "SELECT Id FROM Contact LIMIT 1"
    )
    contact_id = listing["records"][0]["Id"]
    url = f"{sim.url}{DATA}/sobjects/Contact/{contact_id}"
    async with http.patch(url, json={"Title": "CFO", "LastName": "Hopper"}, headers=auth) as resp:
        assert resp.status == 204
    async with http.get(url, headers=auth) as resp:
        contact = await resp.json()
    assert contact["Title"] == "CFO"
    assert contact["Name"].endswith(" Hopper")
    assert contact["LastModifiedDate"] == "2025-06-15T15:06:40.000+0000"
    assert contact["attributes"]["type"] == "Contact"

    async with http.patch(url, json={"Nope": 1}, headers=auth) as resp:
        assert resp.status == 400
        assert (await resp.json())[0]["errorCode"] == "INVALID_FIELD"
    async with http.patch(url, json={"Id": "x"}, headers=auth) as resp:
        assert (await resp.json())[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    async with http.get(f"{sim.url}{DATA}/sobjects/Contact/003missing", headers=auth) as resp:
        assert resp.status == 404
        assert (await resp.json())[0]["errorCode"] == "NOT_FOUND"


async def test_create_account(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    async with http.post(
        f"{sim.url}{DATA}/sobjects/Account", json={"Name": "Interlink"}, headers=auth
    ) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert created["success"] is True
    _, found, _ = await query(
        http, f"{sim.url}{DATA}/query", auth, "SELECT Id FROM Account WHERE Name = 'Interlink'"
    )
    assert [r["Id"] for r in found["records"]] == [created["id"]]


async def test_expired_session_is_invalid_session_id(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: FakeClock
) -> None:
    sim.simulator.set_faults("expiring_tokens")
    token = (await client_credentials(http, sim))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    status, _, _ = await query(http, f"{sim.url}{DATA}/limits", headers)
    assert status == 200
    clock.now += 5
    status, body, _ = await query(http, f"{sim.url}{DATA}/limits", headers)
    assert status == 401
    assert body == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


async def test_limit_info_header_counts_api_calls(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    _, _, first = await query(http, f"{sim.url}{DATA}/limits", auth)
    _, body, second = await query(http, f"{sim.url}{DATA}/limits", auth)
    assert first["Sforce-Limit-Info"] == "api-usage=1/15000"
    assert second["Sforce-Limit-Info"] == "api-usage=2/15000"
    assert body["DailyApiRequests"] == {"Max": 15000, "Remaining": 14998}


async def test_revoked_token_loses_access(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    token = (await client_credentials(http, sim))["access_token"]
    async with http.post(f"{sim.url}/services/oauth2/revoke", data={"token": token}) as resp:
        assert resp.status == 200
    status, body, _ = await query(
        http, f"{sim.url}{DATA}/limits", {"Authorization": f"Bearer {token}"}
    )
    assert status == 401
    assert body[0]["errorCode"] == "INVALID_SESSION_ID"


async def test_rate_limit_profile(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    sim.simulator.set_faults("rate_limit", rate_limit_every=2)
    statuses = []
    for _ in range(4):
        status, body, headers = await query(http, f"{sim.url}{DATA}/limits", auth)
        statuses.append(status)
        if status == 429:
            assert headers["Retry-After"] == "2"
            assert body[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert statuses == [200, 429, 200, 429]
