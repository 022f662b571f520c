"""PostgreSQL stopped mid-burst: no 2xx for anything not stored, and recovery without restart.

The test runs its own PostgreSQL cluster (never the shared one on 5432) and stops it with
``pg_ctl stop -m immediate`` while webhooks keep arriving.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from interlink.webhooks.inbound import senders
from tests.conftest import require_service
from tests.integration.webhooks.inbound.inbound_servers import ServeProcess, private_postgres

SECRET = "whsec_outage"


async def _stored_deliveries(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT delivery_id FROM inbound_events WHERE status='accepted'")
    finally:
        await conn.close()
    return {row[0] for row in rows}


@pytest.mark.slow
async def test_postgres_stopped_mid_burst_never_acknowledges_unstored_and_recovers(
    tmp_path: Path,
) -> None:
    require_service("postgres")  # the PostgreSQL server binaries come with the service
    with private_postgres() as cluster:
        server = ServeProcess(cluster.url, str(tmp_path))
        migrated = server.cli("migrate")
        assert migrated.returncode == 0, migrated.stderr
        await server.start()
        try:
            tenant = (await server.api("POST", "/v1/tenants", {"name": "Outage"}))["id"]
            source = await server.api(
                "POST",
                f"/v1/tenants/{tenant}/sources",
                {"provider": "stripe", "secret": SECRET, "rate_limit": {"per_second": 100000}},
            )
            outcomes: list[tuple[float, str, int]] = []
            counter = itertools.count()
            stop_at = time.monotonic() + 9.0

            async def sender(session: aiohttp.ClientSession) -> None:
                while time.monotonic() < stop_at:
                    delivery = f"evt_outage_{next(counter)}"
                    signed = senders.sign_stripe(SECRET, {"id": delivery, "type": "invoice.paid"})
                    try:
                        async with session.post(
                            f"{server.url}/in/{source['id']}",
                            data=signed.body,
                            headers=signed.headers,
                        ) as answer:
                            await answer.read()
                            outcomes.append((time.monotonic(), delivery, answer.status))
                            if answer.status == 503:
                                assert answer.headers["Retry-After"]
                    except (TimeoutError, aiohttp.ClientError):
                        outcomes.append((time.monotonic(), delivery, 0))
                    await asyncio.sleep(0.005)

            async def outage() -> tuple[float, float]:
                await asyncio.sleep(2.0)
                await asyncio.to_thread(cluster.stop, "immediate")
                down = time.monotonic()
                await asyncio.sleep(2.5)
                await asyncio.to_thread(cluster.start)
                return down, time.monotonic()

            timeout = aiohttp.ClientTimeout(total=15)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                results = await asyncio.gather(outage(), *(sender(session) for _ in range(16)))
            down, up = results[0]
        finally:
            server.stop()
        stored = await _stored_deliveries(cluster.url)

    acked = {delivery for _, delivery, status in outcomes if 200 <= status < 300}
    assert acked - stored == set(), "a 2xx was given for a webhook that was not stored"
    during = [status for moment, _, status in outcomes if down + 0.2 < moment < up - 0.2]
    assert during
    assert 503 in during
    assert not [s for s in during if 200 <= s < 300]
    assert {s for s in during} <= {503, 0}
    after = [status for moment, _, status in outcomes if moment > up + 2.0]
    assert 200 in after, "the server did not recover by itself"
