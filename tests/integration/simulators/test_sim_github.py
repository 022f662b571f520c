"""The GitHub simulator: Link-header paging, rate-limit headers, token endpoint formats."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest

from interlink.simulators import SIM_CLIENT_ID, SIM_CLIENT_SECRET, RunningSimulator, serve_simulator
from tests.integration.simulators.conftest import FakeClock

ISSUES = "/repos/octocat/Hello-World/issues"
LINK_RE = re.compile(r'<([^>]+)>; rel="(\w+)"')


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[RunningSimulator]:
    async with serve_simulator("github", records=64, clock=clock) as running:
        yield running


@pytest.fixture
async def auth(http: aiohttp.ClientSession, sim: RunningSimulator) -> dict[str, str]:
    async with http.post(f"{sim.url}/_sim/tokens", json={"scope": "repo,read:user"}) as resp:
        token = (await resp.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


def links(header: str | None) -> dict[str, str]:
    return {rel: url for url, rel in LINK_RE.findall(header or "")}


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], **params: str
) -> tuple[int, Any, Any]:
    async with http.get(url, headers=headers, params=params or None) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_link_header_walks_every_issue(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    status, page, headers = await get(http, sim.url + ISSUES, auth, state="all", per_page="10")
    assert status == 200
    first_links = links(headers.get("Link"))
    assert set(first_links) == {"next", "last"}
    assert parse_qs(first_links["last"].split("?", 1)[1])["page"] == ["7"]
    issues = list(page)
    pages = 1
    url = first_links.get("next")
    while url:
        status, page, headers = await get(http, url, auth)
        assert status == 200
        issues.extend(page)
        pages += 1
        url = links(headers.get("Link")).get("next")
    assert pages == 7
    assert {"prev", "first"} <= set(links(headers.get("Link")))
    assert sorted(i["number"] for i in issues) == list(range(1, 65))
    created = [i["created_at"] for i in issues]
    assert created == sorted(created, reverse=True)
    issue = issues[0]
    assert issue["url"] == f"{sim.url}{ISSUES}/{issue['number']}"
    assert issue["user"]["login"]


async def test_default_state_is_open_and_since_filters_by_update(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    _, open_issues, _ = await get(http, sim.url + ISSUES, auth, per_page="100")
    assert len(open_issues) == 64 - 64 // 5
    assert {i["state"] for i in open_issues} == {"open"}
    _, everything, _ = await get(http, sim.url + ISSUES, auth, state="all", per_page="100")
    pivot = sorted(i["updated_at"] for i in everything)[40]
    _, recent, _ = await get(http, sim.url + ISSUES, auth, state="all", per_page="100", since=pivot)
    assert len(recent) == 24
    assert all(i["updated_at"] >= pivot for i in recent)


async def test_per_page_is_capped_at_100(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    _, body, headers = await get(http, sim.url + ISSUES, auth, state="all", per_page="500")
    assert len(body) == 64
    assert "Link" not in headers


async def test_rate_limit_headers(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    _, _, first = await get(http, sim.url + "/user", auth)
    _, _, second = await get(http, sim.url + ISSUES, auth)
    assert first["X-RateLimit-Limit"] == "5000"
    assert first["X-RateLimit-Used"] == "1"
    assert second["X-RateLimit-Remaining"] == "4998"
    assert second["X-RateLimit-Resource"] == "core"
    assert int(second["X-RateLimit-Reset"]) == 1_750_003_200
    _, anonymous, headers = await get(http, sim.url + ISSUES, {})
    assert headers["X-RateLimit-Limit"] == "60"
    _, limits, _ = await get(http, sim.url + "/rate_limit", auth)
    assert limits["resources"]["core"]["used"] == 2


async def test_user_needs_a_valid_token(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    status, user, headers = await get(http, sim.url + "/user", auth)
    assert (status, user["login"]) == (200, "interlink-sim")
    assert headers["X-OAuth-Scopes"] == "repo, read:user"
    status, body, _ = await get(http, sim.url + "/user", {})
    assert (status, body["message"]) == (401, "Requires authentication")
    status, body, _ = await get(http, sim.url + "/user", {"Authorization": "token nope"})
    assert (status, body["message"], body["status"]) == (401, "Bad credentials", "401")


async def test_expired_token_is_bad_credentials(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: FakeClock
) -> None:
    sim.simulator.set_faults("expiring_tokens")
    async with http.post(f"{sim.url}/_sim/tokens") as resp:
        token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await get(http, sim.url + "/user", headers))[0] == 200
    clock.now += 5
    status, body, _ = await get(http, sim.url + "/user", headers)
    assert (status, body["message"]) == (401, "Bad credentials")


async def test_secondary_rate_limit_answers_403_and_429_with_retry_after(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    sim.simulator.set_faults("rate_limit", rate_limit_every=1, retry_after_seconds=7)
    statuses = []
    for _ in range(2):
        status, body, headers = await get(http, sim.url + ISSUES, auth)
        statuses.append(status)
        assert headers["Retry-After"] == "7"
        assert body["message"].startswith("You have exceeded a secondary rate limit")
    assert statuses == [403, 429]


async def test_token_endpoint_answers_form_encoded_without_accept_json(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    redirect = "http://127.0.0.1:8080/cb"
    params = {"client_id": SIM_CLIENT_ID, "redirect_uri": redirect, "response_type": "code"}
    async with http.get(
        sim.url + "/login/oauth/authorize", params=params, allow_redirects=False
    ) as resp:
        code = parse_qs(resp.headers["Location"].split("?", 1)[1])["code"][0]
    form = {
        "client_id": SIM_CLIENT_ID,
        "client_secret": SIM_CLIENT_SECRET,
        "code": code,
        "redirect_uri": redirect,
    }
    async with http.post(sim.url + "/login/oauth/access_token", data=form) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-www-form-urlencoded"
        answer = parse_qs(await resp.text())
    assert answer["access_token"][0].startswith("ghu_")
    assert answer["refresh_token"][0].startswith("ghr_")
    assert answer["expires_in"] == ["28800"]
    assert answer["token_type"] == ["bearer"]
    async with http.post(sim.url + "/login/oauth/access_token", data=form) as resp:
        assert resp.status == 200
        assert parse_qs(await resp.text())["error"] == ["bad_verification_code"]


async def test_revoking_a_token(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    token = auth["Authorization"].split()[1]
    url = f"{sim.url}/applications/{SIM_CLIENT_ID}/token"
    secret = base64.b64encode(f"{SIM_CLIENT_ID}:{SIM_CLIENT_SECRET}".encode()).decode()
    basic = {"Authorization": f"Basic {secret}"}
    async with http.delete(url, json={"access_token": token}, headers=basic) as resp:
        assert resp.status == 204
    assert (await get(http, sim.url + "/user", auth))[0] == 401
    async with http.delete(url, json={"access_token": token}, headers=basic) as resp:
        assert resp.status == 404


async def test_unknown_repository_and_api_version(
    http: aiohttp.ClientSession, sim: RunningSimulator, auth: dict[str, str]
) -> None:
    status, body, _ = await get(http, sim.url + "/repos/octocat/nope/issues", auth)
    assert (status, body["message"]) == (404, "Not Found")
    status, body, _ = await get(
        http, sim.url + ISSUES, {**auth, "X-GitHub-Api-Version": "2099-01-01"}
    )
    assert (status, body["message"]) == (400, "API version 2099-01-01 is not supported.")
