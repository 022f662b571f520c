"""kill -9 of ``interlink serve`` during a 5,000-request burst loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from interlink.webhooks.inbound import senders
from tests.integration.webhooks.inbound.inbound_servers import ServeProcess

SECRET = "whsec_crash"
BURST = 5000
KILL_AFTER = 1500


async def _burst(server: ServeProcess, source_id: str) -> dict[str, int]:
    """Post BURST distinct events; kill the server after KILL_AFTER acks; return acked ids."""
    acked: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(BURST):
        queue.put_nowait(n)
    killed = asyncio.Event()

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            event = {"id": f"evt_crash_{n}", "type": "invoice.paid", "data": {"n": n}}
            signed = senders.sign_stripe(SECRET, event)
            try:
                async with session.post(
                    f"{server.url}/in/{source_id}", data=signed.body, headers=signed.headers
                ) as answer:
                    await answer.read()
                    if 200 <= answer.status < 300:
                        acked[event["id"]] = answer.status
            except (TimeoutError, aiohttp.ClientError):
                continue
            if len(acked) >= KILL_AFTER and not killed.is_set():
                killed.set()
                server.kill()

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(48)))
    assert killed.is_set()
    return acked


@pytest.mark.slow
async def test_kill_9_mid_burst_loses_no_acknowledged_webhook(tmp_path: Path) -> None:
    database = tmp_path / "interlink.db"
    server = ServeProcess(f"sqlite:///{database}", str(tmp_path), INTERLINK_JOB_LEASE_SECONDS="2")
    await server.start()
    try:
        tenant = (await server.api("POST", "/v1/tenants", {"name": "Crash"}))["id"]
        source = await server.api(
            "POST",
            f"/v1/tenants/{tenant}/sources",
            {"provider": "stripe", "secret": SECRET, "rate_limit": {"per_second": 100000}},
        )
        acked = await _burst(server, source["id"])
        assert len(acked) >= KILL_AFTER

        await server.start()  # the same database: jobs of the dead process are reclaimed
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            with sqlite3.connect(database) as db:
                pending = db.execute(
                    "SELECT count(*) FROM jobs WHERE kind = 'inbound.process' "
                    "AND status != 'succeeded'"
                ).fetchone()[0]
            if pending == 0:
                break
            assert asyncio.get_running_loop().time() < deadline, f"{pending} jobs left"
            await asyncio.sleep(0.5)
    finally:
        server.stop()

    with sqlite3.connect(database) as db:
        stored = dict(
            db.execute(
                "SELECT delivery_id, id FROM inbound_events WHERE status = 'accepted'"
            ).fetchall()
        )
        emitted = db.execute(
            "SELECT json_extract(data, '$.received_event_id'), count(*) FROM events "
            "WHERE type = 'dev.interlink.webhook.received' GROUP BY 1"
        ).fetchall()
        statuses = dict(
            db.execute(
                "SELECT processing_status, count(*) FROM inbound_events GROUP BY 1"
            ).fetchall()
        )
    missing = [delivery for delivery in acked if delivery not in stored]
    assert missing == [], f"{len(missing)} acknowledged webhooks were lost"
    counts = dict(emitted)
    # Every stored event (acknowledged or not) was processed, and exactly once.
    assert set(counts) == set(stored.values())
    assert set(counts.values()) == {1}
    assert statuses == {"processed": len(stored)}
