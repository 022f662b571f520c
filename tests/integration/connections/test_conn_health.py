"""Scheduled health probes of connections and the providers' health view."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import func, select

from interlink.connections.health import PROBE_JOB, probe_once, schedule_probes
from interlink.connections.tables import oauth_states
from interlink.simulators import serve_simulator
from interlink.store.schema import jobs
from interlink.store.types import utcnow
from tests.integration.connections.conn_support import running_hub


async def test_probes_record_health_and_the_provider_view_follows(db_url: str) -> None:
    async with serve_simulator("stripe") as sim:
        async with running_hub(db_url, {"stripe": sim.url}) as hub:
            created = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections",
                json={
                    "provider": "stripe",
                    "auth_type": "api_key",
                    "credentials": {"api_key": "sk_test_h"},
                },
            )
            url = f"/v1/tenants/{hub.tenant_id}/connections/{created.json()['id']}"
            hub.state.probe_interval = 0.002
            assert await probe_once(hub.state) == 1
            shown = (await hub.admin.get(url)).json()
            assert shown["health_status"] == "healthy" and shown["health_checked_at"]
            health = {
                h["provider"]: h for h in (await hub.admin.get("/v1/providers/health")).json()
            }
            assert health["stripe"]["status"] == "healthy"
            assert health["stripe"]["connections"] == {"active": 1}
            sim.simulator.set_faults("flaky", flaky_ratio=1.0)
            assert await probe_once(hub.state) == 1
            shown = (await hub.admin.get(url)).json()
            assert shown["health_status"] == "unhealthy" and "500" in shown["health_detail"]
            health = {
                h["provider"]: h for h in (await hub.admin.get("/v1/providers/health")).json()
            }
            assert health["stripe"]["status"] == "degraded"


async def test_the_probe_job_is_scheduled_once_per_period(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        for _ in range(3):  # every process schedules at start; one job per period remains
            await schedule_probes(hub.runtime, period=10**6)
        async with hub.runtime.db.transaction() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(jobs).where(jobs.c.kind == PROBE_JOB)
            )
        assert count == 2  # the current period (from start) and period 10**6


async def test_the_probe_job_probes_and_purges_old_flows(sqlite_url: str) -> None:
    async with serve_simulator("stripe") as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}, run_workers=True) as hub:
            created = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections",
                json={"provider": "stripe", "auth_type": "api_key",
                      "credentials": {"api_key": "sk_test_j"}},
            )  # fmt: skip
            url = f"/v1/tenants/{hub.tenant_id}/connections/{created.json()['id']}"
            old = utcnow() - timedelta(days=2)
            async with hub.runtime.db.transaction() as conn:
                await conn.execute(
                    oauth_states.insert().values(
                        id="old-flow", tenant_id=hub.tenant_id, provider="hubspot",
                        connection_id="con_x", redirect_uri="http://x", scopes=[], config={},
                        expires_at=old, created_at=old,
                    )
                )  # fmt: skip
            period = int(time.time() // hub.state.probe_interval) - 1  # due now
            await schedule_probes(hub.runtime, period=period)
            deadline = time.monotonic() + 30  # the worker runs the job when it gets to it
            while not (await hub.admin.get(url)).json()["health_status"]:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert (await hub.admin.get(url)).json()["health_status"] == "healthy"
            while True:
                async with hub.runtime.db.transaction() as conn:
                    left = await conn.scalar(select(func.count()).select_from(oauth_states))
                if not left or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert left == 0
