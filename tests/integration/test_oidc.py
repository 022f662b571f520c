"""OIDC bearer JWTs validated against a real JWKS endpoint on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from interlink.runtime import Runtime
from tests.conftest import api_client, make_settings

ISSUER = "https://issuer.example"
AUDIENCE = "interlink-api"


@pytest.fixture
async def jwks_server() -> AsyncIterator[tuple[str, RSAKey, dict[str, int]]]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
    hits = {"jwks": 0}

    async def jwks(_: web.Request) -> web.Response:
        hits["jwks"] += 1
        return web.json_response({"keys": [key.as_dict(private=False)]})

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {"issuer": ISSUER, "jwks_uri": str(request.url.with_path("/jwks"))}
        )

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    app.router.add_get("/.well-known/openid-configuration", discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", key, hits
    finally:
        await runner.cleanup()


def _token(key: RSAKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, **claims}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)


async def test_oidc_tokens_grant_admin_or_one_tenant(
    sqlite_url: str, jwks_server: tuple[str, RSAKey, dict[str, int]]
) -> None:
    base, key, hits = jwks_server
    settings = make_settings(
        sqlite_url,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{base}/jwks",
    )
    runtime = Runtime(settings, capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        admin_jwt = _token(key, scope="openid interlink:admin")
        async with api_client(runtime, token=admin_jwt) as admin:
            tenant = (await admin.post("/v1/tenants", json={"name": "Via OIDC"})).json()
            audit = (await admin.get("/v1/audit-log")).json()["data"]
            assert audit[-1]["actor"] == "oidc:user-1"
        other = (await _post_tenant(runtime, admin_jwt, "Other")).json()

        tenant_jwt = _token(key, tenant_id=tenant["id"], sub="user-2")
        async with api_client(runtime, token=tenant_jwt) as member:
            assert (await member.get(f"/v1/tenants/{tenant['id']}")).status_code == 200
            assert (await member.get(f"/v1/tenants/{other['id']}")).status_code == 404
            assert (await member.get("/v1/tenants")).status_code == 403

        for bad, reason in [
            (_token(key, scope="interlink:admin", aud="someone-else"), "audience"),
            (_token(key, scope="interlink:admin", iss="https://evil.example"), "issuer"),
            (_token(key, scope="interlink:admin", exp=int(time.time()) - 3600), "expired"),
            (_token(key, scope="openid"), "neither the admin role nor a tenant"),
            (
                _token(
                    RSAKey.generate_key(2048, parameters={"kid": "k1"}), scope="interlink:admin"
                ),
                "not valid",
            ),
        ]:
            async with api_client(runtime, token=bad) as client:
                response = await client.get("/v1/tenants")
                assert response.status_code == 401, reason
                assert reason in response.json()["detail"]
        assert hits["jwks"] >= 1
    finally:
        await runtime.close()


async def test_roles_claim_and_discovery(
    sqlite_url: str, jwks_server: tuple[str, RSAKey, dict[str, int]]
) -> None:
    base, key, _ = jwks_server
    settings = make_settings(sqlite_url, oidc_issuer=ISSUER, oidc_audience=AUDIENCE)
    runtime = Runtime(settings, capabilities=[])
    await runtime.start(migrate_schema=True)
    from interlink.auth.oidc import OIDCValidator

    async def fetch(url: str) -> dict[str, Any]:
        import aiohttp

        # The issuer is not resolvable here, so discovery is served by the local server.
        url = url.replace(ISSUER, base)
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            data: dict[str, Any] = await response.json()
            return data

    try:
        runtime.state["oidc"] = OIDCValidator(settings, fetch=fetch)
        token = _token(key, roles=["interlink:admin"], aud=[AUDIENCE, "other"])
        async with api_client(runtime, token=token) as admin:
            assert (await admin.get("/v1/tenants")).status_code == 200
    finally:
        await runtime.close()


async def _post_tenant(runtime: Runtime, token: str, name: str) -> Any:
    async with api_client(runtime, token=token) as client:
        return await client.post("/v1/tenants", json={"name": name})
