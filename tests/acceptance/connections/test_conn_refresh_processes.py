"""Two real API processes on PostgreSQL: 50 concurrent calls on an expired token, one refresh."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from interlink.simulators import SIM_CLIENT_ID, SIM_CLIENT_SECRET, serve_simulator
from tests.conftest import ADMIN_TOKEN, MASTER_KEY
from tests.serving import InterlinkProcess, free_tcp_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _env(pg_url: str, public_url: str) -> dict[str, str]:
    return {
        "INTERLINK_EGRESS_ALLOW": "127.0.0.0/8",
        "INTERLINK_PUBLIC_URL": public_url,
        "INTERLINK_MASTER_KEY": MASTER_KEY,
        "INTERLINK_DATABASE_URL": pg_url,
    }


async def _connect(api: httpx.AsyncClient, tenant_id: str, sim_url: str) -> str:
    app = await api.put(
        f"/v1/tenants/{tenant_id}/oauth-apps/rest",
        json={"client_id": SIM_CLIENT_ID, "client_secret": SIM_CLIENT_SECRET},
    )
    assert app.status_code == 200, app.text
    config = {
        "base_url": sim_url,
        "authorize_url": f"{sim_url}/oauth/authorize",
        "token_url": f"{sim_url}/oauth/v1/token",
    }
    started = await api.post(
        f"/v1/tenants/{tenant_id}/connections/oauth/start",
        json={"provider": "rest", "config": config, "redirect_after": "https://app.test/ok"},
    )
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(started.json()["authorize_url"])
        callback = await browser.get(consent.headers["location"])
    assert callback.status_code == 303, callback.text
    query = dict(p.split("=", 1) for p in urlsplit(callback.headers["location"]).query.split("&"))
    return query["connection_id"]


async def test_fifty_calls_on_an_expired_token_refresh_once(pg_url: str, tmp_path: Path) -> None:
    ports = [free_tcp_port(), free_tcp_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    env = {**os.environ, **_env(pg_url, urls[0])}
    subprocess.run([sys.executable, "-m", "interlink", "migrate"], env=env, check=True)
    processes = [
        InterlinkProcess(
            tmp_path,
            database_url=pg_url,
            args=("serve", "--no-worker"),
            port=port,
            env=_env(pg_url, urls[0]),
        )  # fmt: skip
        for port in ports
    ]
    async with serve_simulator("hubspot", records=3) as sim:
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in processes))
        try:
            async with httpx.AsyncClient(base_url=urls[0], headers=ADMIN, timeout=30) as api:
                tenant = (await api.post("/v1/tenants", json={"name": "T"})).json()["id"]
                key = (await api.post(f"/v1/tenants/{tenant}/api-keys", json={})).json()["key"]
                connection_id = await _connect(api, tenant, sim.url)
            assert sim.simulator.count("/oauth/v1/token") == 1
            # The token is expired for Interlink and dead at the provider.
            for token in list(sim.simulator.oauth._access):
                sim.simulator.oauth.revoke(token)
            db = await asyncpg.connect(pg_url)
            try:
                await db.execute(
                    "UPDATE connections SET expires_at = now() - interval '1 second' WHERE id = $1",
                    connection_id,
                )
            finally:
                await db.close()
            clients = [
                httpx.AsyncClient(
                    base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
                )
                for url in urls
            ]
            path = f"/v1/proxy/{connection_id}/crm/v3/objects/contacts"
            answers = await asyncio.gather(*(clients[n % 2].get(path) for n in range(50)))
            for client in clients:
                await client.aclose()
            assert [a.status_code for a in answers] == [200] * 50, answers[0].text
            assert sim.simulator.count("/oauth/v1/token") == 2  # the exchange and ONE refresh
        finally:
            for process in processes:
                process.stop()
