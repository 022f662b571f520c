"""Helpers for connections tests: a hub (runtime + API client) wired to simulators."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update

from interlink.connections.capability import capability
from interlink.connections.catalog import Catalog, load_catalog
from interlink.connections.state import ConnectionsState, connections_state
from interlink.connections.tables import connections
from interlink.runtime import Runtime
from interlink.simulators import SIM_CLIENT_ID, SIM_CLIENT_SECRET
from interlink.store.types import utcnow
from tests.conftest import api_client, make_settings

PUBLIC_URL = "http://interlink.test"


@dataclass
class Hub:
    """A running Interlink (in-process) and an admin client for it."""

    runtime: Runtime
    admin: httpx.AsyncClient
    tenant_id: str
    key: str

    @property
    def state(self) -> ConnectionsState:
        return connections_state(self.runtime)

    def client(self, token: str) -> httpx.AsyncClient:
        transport = self.admin._transport
        return httpx.AsyncClient(
            transport=transport,
            base_url=PUBLIC_URL,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def tenant(self, name: str) -> tuple[str, str]:
        tenant = (await self.admin.post("/v1/tenants", json={"name": name})).json()
        key = await self.admin.post(f"/v1/tenants/{tenant['id']}/api-keys", json={"name": "t"})
        return tenant["id"], key.json()["key"]

    async def api_key_connection(self, provider: str, api_key: str) -> str:
        """A connection of the hub's tenant with ``api_key`` (verified by the health probe)."""
        created = await self.admin.post(
            f"/v1/tenants/{self.tenant_id}/connections",
            json={"provider": provider, "auth_type": "api_key",
                  "credentials": {"api_key": api_key}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        connection_id: str = created.json()["id"]
        return connection_id

    async def oauth_app(self, provider: str, tenant_id: str | None = None) -> None:
        tenant = tenant_id or self.tenant_id
        response = await self.admin.put(
            f"/v1/tenants/{tenant}/oauth-apps/{provider}",
            json={"client_id": SIM_CLIENT_ID, "client_secret": SIM_CLIENT_SECRET},
        )
        assert response.status_code == 200, response.text

    async def connect(
        self, provider: str, *, config: Mapping[str, Any] | None = None, **extra: Any
    ) -> httpx.Response:
        """Run the whole authorization-code flow; returns the callback's answer."""
        started = await self.admin.post(
            f"/v1/tenants/{self.tenant_id}/connections/oauth/start",
            json={"provider": provider, "config": dict(config or {}), **extra},
        )
        assert started.status_code == 200, started.text
        return await self.follow(started.json()["authorize_url"])

    async def follow(self, authorize_url: str) -> httpx.Response:
        """Play the browser: visit the provider, then bring its redirect to the callback."""
        async with httpx.AsyncClient() as browser:
            consent = await browser.get(authorize_url)
        assert consent.status_code in (302, 303), consent.text
        location = consent.headers["location"]
        assert location.startswith(PUBLIC_URL + "/oauth/callback"), location
        parts = urlsplit(location)
        return await self.admin.get(f"{parts.path}?{parts.query}", headers={"Authorization": ""})


def catalog_for(overrides: Mapping[str, str]) -> Catalog:
    return load_catalog().with_overrides(dict(overrides))


@contextlib.asynccontextmanager
async def running_hub(
    db_url: str,
    overrides: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
    *,
    run_workers: bool = False,
) -> AsyncIterator[Hub]:
    settings = make_settings(db_url, egress_allow=["127.0.0.0/8"], public_url=PUBLIC_URL)
    runtime = Runtime(settings, capabilities=[capability])
    async with api_client(runtime, run_workers=run_workers) as admin:
        state = connections_state(runtime)
        state.use_catalog(catalog or catalog_for(overrides or {}))
        tenant = (await admin.post("/v1/tenants", json={"name": "Acme"})).json()
        key = await admin.post(f"/v1/tenants/{tenant['id']}/api-keys", json={"name": "app"})
        yield Hub(runtime, admin, tenant["id"], key.json()["key"])


def connection_id_of(callback: httpx.Response) -> str:
    location = callback.headers["location"]
    query = dict(part.split("=", 1) for part in urlsplit(location).query.split("&"))
    return query["connection_id"]


async def expire_token(hub: Hub, connection_id: str) -> None:
    """Make the connection's token look expired to Interlink (and drop the cached copy)."""
    async with hub.runtime.db.transaction() as conn:
        await conn.execute(
            update(connections)
            .where(connections.c.id == connection_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    hub.state.forget(connection_id)
