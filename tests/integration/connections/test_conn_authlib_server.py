"""The whole OAuth2 lifecycle against a real authorization server built from Authlib."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from interlink.connections.tables import connections
from interlink.store.types import utcnow
from tests.integration.connections.authlib_server import CLIENT_ID, CLIENT_SECRET, serve_authlib
from tests.integration.connections.conn_support import PUBLIC_URL, connection_id_of, running_hub


@pytest.fixture(autouse=True)
def _http_is_fine_on_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    yield


async def test_code_pkce_refresh_rotation_and_revocation(sqlite_url: str) -> None:
    async with serve_authlib(f"{PUBLIC_URL}/oauth/callback") as server:
        config = {
            "base_url": f"{server.url}/api",
            "authorize_url": f"{server.url}/authorize",
            "token_url": f"{server.url}/token",
            "revoke_url": f"{server.url}/revoke",
        }
        async with running_hub(sqlite_url) as hub:
            put = await hub.admin.put(
                f"/v1/tenants/{hub.tenant_id}/oauth-apps/rest",
                json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scopes": ["me"]},
            )
            assert put.status_code == 200
            callback = await hub.connect("rest", config=config, redirect_after="https://a.test/")
            assert callback.status_code == 303, callback.text
            connection_id = connection_id_of(callback)
            assert server.store.token_requests == ["authorization_code"]
            first = server.store.tokens[0]
            async with hub.client(hub.key) as app:
                me = await app.get(f"/v1/proxy/{connection_id}/me")
                assert me.status_code == 200, me.text
                for round_ in (1, 2):  # the second refresh needs the rotated refresh token
                    async with hub.runtime.db.transaction() as conn:
                        await conn.execute(
                            update(connections)
                            .where(connections.c.id == connection_id)
                            .values(expires_at=utcnow() - timedelta(seconds=1))
                        )
                    hub.state.forget(connection_id)
                    me = await app.get(f"/v1/proxy/{connection_id}/me")
                    assert me.status_code == 200, me.text
                    assert server.store.token_requests[-1] == "refresh_token"
                    assert len(server.store.tokens) == 1 + round_
            assert first.revoked  # rotation revoked the first grant's refresh token
            deleted = await hub.admin.delete(
                f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}"
            )
            assert deleted.status_code == 204
            assert server.store.tokens[-1].revoked  # RFC 7009 revocation reached the server


async def test_wrong_pkce_or_client_secret_is_refused_by_the_server(sqlite_url: str) -> None:
    async with serve_authlib(f"{PUBLIC_URL}/oauth/callback") as server:
        config = {
            "base_url": f"{server.url}/api",
            "authorize_url": f"{server.url}/authorize",
            "token_url": f"{server.url}/token",
        }
        async with running_hub(sqlite_url) as hub:
            await hub.admin.put(
                f"/v1/tenants/{hub.tenant_id}/oauth-apps/rest",
                json={"client_id": CLIENT_ID, "client_secret": "wrong"},
            )
            callback = await hub.connect("rest", config=config, redirect_after="https://a.test/")
            assert callback.status_code == 400
            assert "invalid_client" in callback.text
            listed = (await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections")).json()
            assert listed["data"][0]["status"] == "error"
