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
            # (sent, answered, delivery, status) of each webhook; the moments of the outage.
            outcomes: list[tuple[float, float, str, int]] = []
            counter = itertools.count()
            moments: dict[str, float] = {}
            done = asyncio.Event()

            async def sender(session: aiohttp.ClientSession) -> None:
                while not done.is_set():
                    delivery = f"evt_outage_{next(counter)}"
                    signed = senders.sign_stripe(SECRET, {"id": delivery, "type": "invoice.paid"})
                    sent = time.monotonic()
                    try:
                        async with session.post(
                            f"{server.url}/in/{source['id']}",
                            data=signed.body,
                            headers=signed.headers,
                        ) as answer:
                            await answer.read()
                            outcomes.append((sent, time.monotonic(), delivery, answer.status))
                            if answer.status == 503:
                                assert answer.headers["Retry-After"]
                    except (TimeoutError, aiohttp.ClientError):
                        outcomes.append((sent, time.monotonic(), delivery, 0))
                    await asyncio.sleep(0.005)

            def recovered() -> bool:  # a webhook sent once the cluster was back was stored
                up = moments.get("up")
                return up is not None and any(
                    sent > up and status == 200 for sent, _, _, status in outcomes
                )

            async def outage() -> None:
                try:
                    await asyncio.sleep(2.0)
                    await asyncio.to_thread(cluster.stop, "immediate")
                    moments["down"] = time.monotonic()
                    await asyncio.sleep(2.5)
                    moments["restarting"] = time.monotonic()
                    await asyncio.to_thread(cluster.start)
                    moments["up"] = time.monotonic()
                    # Without a restart of the server, however slowly a loaded machine gets
                    # there: the senders go on until it stores webhooks again.
                    deadline = moments["up"] + 60
                    while not recovered() and time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                finally:
                    done.set()

            timeout = aiohttp.ClientTimeout(total=15)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await asyncio.gather(outage(), *(sender(session) for _ in range(16)))
        finally:
            server.stop()
        stored = await _stored_deliveries(cluster.url)

    acked = {delivery for _, _, delivery, status in outcomes if 200 <= status < 300}
    assert acked - stored == set(), "a 2xx was given for a webhook that was not stored"
    # Sent once the cluster was down, answered before it was started again.
    during = [
        status
        for sent, answered, _, status in outcomes
        if moments["down"] < sent and answered < moments["restarting"]
    ]
    assert during
    assert 503 in during
    assert not [s for s in during if 200 <= s < 300]
    assert {s for s in during} <= {503, 0}
    after = [status for sent, _, _, status in outcomes if sent > moments["up"]]
    assert 200 in after, "the server did not recover by itself"
