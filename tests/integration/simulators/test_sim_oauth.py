"""The OAuth server of every simulator, driven over HTTP as an OAuth client would."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from interlink.simulators import (
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    RunningSimulator,
    pkce_s256,
    serve_simulator,
)

REDIRECT_URI = "http://127.0.0.1:8080/oauth/callback"


@dataclass(frozen=True)
class Spec:
    authorize: str
    token: str
    probe: str  # an authenticated API call
    rotates: bool
    refresh_returns_token: bool
    bad_code_error: str
    bad_refresh_error: str
    error_status: int


SPECS = {
    "stripe": Spec(
        "/oauth/authorize", "/oauth/token", "/v1/balance", False, True,
        "invalid_grant", "invalid_grant", 400,
    ),
    "salesforce": Spec(
        "/services/oauth2/authorize", "/services/oauth2/token", "/services/data/v61.0/limits",
        False, False, "invalid_grant", "invalid_grant", 400,
    ),
    "hubspot": Spec(
        "/oauth/authorize", "/oauth/v1/token", "/account-info/v3/details", False, True,
        "invalid_grant", "invalid_grant", 400,
    ),
    # GitHub reports token errors with HTTP 200 and its own error codes.
    "github": Spec(
        "/login/oauth/authorize", "/login/oauth/access_token", "/user", True, True,
        "bad_verification_code", "bad_refresh_token", 200,
    ),
}  # fmt: skip

pytestmark = pytest.mark.parametrize("provider", list(SPECS))


@pytest.fixture
async def sim(provider: str) -> AsyncIterator[RunningSimulator]:
    async with serve_simulator(provider, records=5) as running:
        yield running


async def authorize(
    http: aiohttp.ClientSession, sim: RunningSimulator, spec: Spec, **extra: str
) -> dict[str, list[str]]:
    params = {
        "response_type": "code",
        "client_id": SIM_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "st-123",
        "scope": "read",
        **extra,
    }
    async with http.get(sim.url + spec.authorize, params=params, allow_redirects=False) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)


async def token_request(
    http: aiohttp.ClientSession, sim: RunningSimulator, spec: Spec, **form: str
) -> tuple[int, dict[str, Any]]:
    data = {"client_id": SIM_CLIENT_ID, "client_secret": SIM_CLIENT_SECRET, **form}
    headers = {"Accept": "application/json"}
    async with http.post(sim.url + spec.token, data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def pkce_exchange(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    spec: Spec,
    code_verifier: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Authorize with an S256 challenge, then redeem the code with ``code_verifier``.

    The default verifier is the one the challenge was made from.
    """
    verifier = secrets.token_urlsafe(48)
    query = await authorize(
        http, sim, spec, code_challenge=pkce_s256(verifier), code_challenge_method="S256"
    )
    return await token_request(
        http,
        sim,
        spec,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=REDIRECT_URI,
        code_verifier=code_verifier or verifier,
    )


async def code_flow(
    http: aiohttp.ClientSession, sim: RunningSimulator, spec: Spec
) -> dict[str, Any]:
    status, body = await pkce_exchange(http, sim, spec)
    assert status == 200, body
    return body


async def api_status(
    http: aiohttp.ClientSession, sim: RunningSimulator, spec: Spec, token: str
) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(sim.url + spec.probe, headers=headers) as resp:
        return resp.status


async def test_code_flow_with_pkce_issues_a_working_token(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    tokens = await code_flow(http, sim, spec)
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    assert await api_status(http, sim, spec, tokens["access_token"]) == 200
    assert await api_status(http, sim, spec, "not-a-token") == 401


async def test_authorize_echoes_state(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    query = await authorize(http, sim, SPECS[provider])
    assert query["state"] == ["st-123"]
    assert "code" in query


async def test_wrong_code_verifier_is_refused(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    status, body = await pkce_exchange(http, sim, spec, code_verifier=secrets.token_urlsafe(48))
    assert status == spec.error_status
    assert body["error"] == spec.bad_code_error
    assert "access_token" not in body


async def test_missing_code_verifier_is_refused(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    query = await authorize(
        http, sim, spec, code_challenge=pkce_s256("x" * 43), code_challenge_method="S256"
    )
    status, body = await token_request(
        http, sim, spec, grant_type="authorization_code", code=query["code"][0]
    )
    assert (status, body["error"]) == (spec.error_status, spec.bad_code_error)


async def test_code_is_single_use(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    query = await authorize(http, sim, spec)
    form = {"grant_type": "authorization_code", "code": query["code"][0]}
    first, _ = await token_request(http, sim, spec, **form)
    second, body = await token_request(http, sim, spec, **form)
    assert first == 200
    assert (second, body["error"]) == (spec.error_status, spec.bad_code_error)


async def test_wrong_client_secret_is_refused(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    query = await authorize(http, sim, spec)
    status, body = await token_request(
        http,
        sim,
        spec,
        grant_type="authorization_code",
        code=query["code"][0],
        client_secret="wrong",
    )
    assert "access_token" not in body
    assert body["error"] in {"invalid_client", "incorrect_client_credentials"}


async def test_refresh_follows_the_provider_rotation_rule(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    first = await code_flow(http, sim, spec)
    status, refreshed = await token_request(
        http, sim, spec, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert status == 200, refreshed
    assert refreshed["access_token"] != first["access_token"]
    assert await api_status(http, sim, spec, refreshed["access_token"]) == 200
    again_status, again = await token_request(
        http, sim, spec, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    if spec.rotates:
        assert refreshed["refresh_token"] != first["refresh_token"]
        assert (again_status, again["error"]) == (spec.error_status, spec.bad_refresh_error)
    else:
        if spec.refresh_returns_token:
            assert refreshed["refresh_token"] == first["refresh_token"]
        else:
            assert "refresh_token" not in refreshed
        assert again_status == 200
        assert "access_token" in again


async def test_revoked_refresh_fault_gives_invalid_grant(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    tokens = await code_flow(http, sim, spec)
    async with http.put(sim.url + "/_sim/faults", json={"profiles": "revoked_refresh"}) as resp:
        assert resp.status == 200
    status, body = await token_request(
        http, sim, spec, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert (status, body["error"]) == (spec.error_status, spec.bad_refresh_error)


async def test_user_denial_redirects_with_access_denied(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    query = await authorize(http, sim, spec, sim_deny="1")
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["st-123"]
    assert "code" not in query
    sim.simulator.set_faults("access_denied")
    assert (await authorize(http, sim, spec))["error"] == ["access_denied"]


async def test_unknown_client_is_not_redirected(
    provider: str, sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    spec = SPECS[provider]
    params = {"response_type": "code", "client_id": "intruder", "redirect_uri": REDIRECT_URI}
    async with http.get(sim.url + spec.authorize, params=params, allow_redirects=False) as resp:
        assert resp.status in {400, 404}
        assert "Location" not in resp.headers
