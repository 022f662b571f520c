"""Scale-out on PostgreSQL: `serve --no-worker` takes the requests, `interlink worker`s do the work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from interlink.queue.jobs import NOTIFY_CHANNEL
from interlink.webhooks.inbound.senders import sign_stripe
from tests.conftest import ADMIN_TOKEN
from tests.serving import InterlinkProcess

pytestmark = pytest.mark.slow
WEBHOOKS = 200


async def test_api_only_server_and_two_workers_share_the_work(tmp_path: Path, pg_url: str) -> None:
    migrate = InterlinkProcess(tmp_path, database_url=pg_url, args=("migrate",)).start(wait=False)
    assert migrate.process is not None
    assert migrate.process.wait(120) == 0, migrate.output()
    migrate.stop()
    env = {
        "INTERLINK_JOB_POLL_SECONDS": "0.5",
        "INTERLINK_LOG_LEVEL": "warning",
        # The workers' health probe of the connection stays off the network (a refused address).
        "INTERLINK_PROVIDER_OVERRIDES": "stripe=http://127.0.0.1:9",
    }
    api = InterlinkProcess(tmp_path, database_url=pg_url, args=("serve", "--no-worker"), env=env)
    workers = [
        InterlinkProcess(
            tmp_path, database_url=pg_url, args=("worker", "--concurrency", "8"), env=env
        )
        for _ in range(2)
    ]
    api.env["INTERLINK_PUBLIC_URL"] = api.url
    with api:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(f"{api.url}/v1/tenants", json={"name": "Scale"}) as response:
                tenant = (await response.json())["id"]
            async with session.post(
                f"{api.url}/v1/tenants/{tenant}/connections",
                json={
                    "provider": "stripe",
                    "auth_type": "api_key",
                    "credentials": {"api_key": "sk_test_scale_out"},
                    "verify": False,
                },
            ) as response:
                assert response.status == 201, await response.text()
                connection_id = (await response.json())["id"]
            secret = "whsec_scale_out_test"
            async with session.post(
                f"{api.url}/v1/tenants/{tenant}/sources",
                # A source of a connection: each event is a job for the workers (the
                # connection's sync triggers), beyond its webhook.received.
                json={"provider": "stripe", "secret": secret, "connection_id": connection_id},
            ) as response:
                assert response.status == 201, await response.text()
                ingest_url = (await response.json())["ingest_url"]

        async def post_one(client: aiohttp.ClientSession) -> int:
            signed = sign_stripe(secret)
            async with client.post(
                ingest_url, data=signed.body, headers=signed.headers
            ) as response:
                return response.status

        async with aiohttp.ClientSession() as client:
            statuses = await asyncio.gather(*(post_one(client) for _ in range(WEBHOOKS)))
        assert statuses == [200] * WEBHOOKS

        # The API process runs no worker: nothing is processed until workers start.
        await asyncio.sleep(1.5)
        conn = await asyncpg.connect(pg_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 0
            # Hold the jobs back until both workers are up, then release them with one NOTIFY
            # that wakes both at once: otherwise the first to start may do all the work before
            # the other has finished starting (on a loaded machine it did).
            await conn.execute("UPDATE jobs SET run_at = now() + interval '1 hour'")
            listening = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = $1"
            )
            listen = f'LISTEN "{NOTIFY_CHANNEL}"'
            others = await conn.fetchval(listening, listen)  # the API process's, if any
            for worker in workers:
                worker.process = None
                worker.start(wait=False)
            try:
                for _ in range(240):
                    if all("Interlink worker on" in worker.output() for worker in workers):
                        break
                    await asyncio.sleep(0.25)
                # Until both workers' LISTEN connections are open, however long that takes.
                for _ in range(240):
                    if await conn.fetchval(listening, listen) >= others + 2:
                        break
                    await asyncio.sleep(0.25)
                await conn.execute(f"UPDATE jobs SET run_at = now(); NOTIFY {NOTIFY_CHANNEL}")
                received = await conn.fetchval(
                    "SELECT count(*) FROM events WHERE type = 'dev.interlink.webhook.received'"
                )
                assert received == WEBHOOKS  # emitted with each event, before the 200
                for _ in range(240):
                    done = await conn.fetchval(
                        "SELECT count(*) FROM jobs "
                        "WHERE kind = 'inbound.process' AND status = 'succeeded'"
                    )
                    if done == WEBHOOKS:
                        break
                    await asyncio.sleep(0.25)
                assert done == WEBHOOKS
                by_worker = await conn.fetch(
                    "SELECT worker_id, count(*) AS n FROM jobs WHERE status = 'succeeded' "
                    "GROUP BY worker_id"
                )
            finally:
                for worker in workers:
                    worker.stop()
        finally:
            await conn.close()
    assert sum(row["n"] for row in by_worker) >= WEBHOOKS
    assert len(by_worker) == 2, "both worker processes took part"
