"""kill -9 of a real ``interlink serve`` during a burst of 5,000 messages, then a restart:
every acknowledged message reaches the receiver at least once, and no delivery is marked
succeeded without the receiver having had it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from interlink.store.database import Database
from interlink.webhooks.outbound.tables import outbound_deliveries
from tests.conftest import ADMIN_TOKEN
from tests.integration.webhooks.outbound.outbound_support import eventually, receiver
from tests.serving import InterlinkProcess

pytestmark = pytest.mark.slow
TOTAL = 5000
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _post_all(
    url: str, tenant: str, numbers: list[int], accepted: dict[int, str], stop_after: int | None
) -> None:
    """POST messages ``m-<n>`` (idempotent ids) until done or ``stop_after`` are accepted."""
    queue = list(numbers)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue and (stop_after is None or len(accepted) < stop_after):
            number = queue.pop()
            body = {"event_type": "order.created", "payload": {"n": number}, "id": f"m-{number}"}
            try:
                async with session.post(
                    f"{url}/v1/tenants/{tenant}/messages", json=body, headers=AUTH
                ) as answer:
                    if answer.status == 202:
                        accepted[number] = (await answer.json())["id"]
                        continue
            except (aiohttp.ClientError, TimeoutError):
                pass
            queue.append(number)  # not acknowledged: send it again later
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(worker(session) for _ in range(32)))


async def test_kill_during_a_burst_loses_and_fakes_nothing(tmp_path: Path, db_url: str) -> None:
    env = {
        "INTERLINK_EGRESS_ALLOW": "127.0.0.1/32",
        "INTERLINK_RETRY_SCHEDULE": "100ms,200ms,500ms,1s,1s,2s,2s,2s",
        "INTERLINK_JOB_POLL_SECONDS": "0.05",
        "INTERLINK_JOB_LEASE_SECONDS": "4",
        "INTERLINK_LOG_LEVEL": "warning",
    }
    database = db_url if db_url.startswith("postgresql") else None
    if database:
        migrate = InterlinkProcess(tmp_path, database_url=database, args=("migrate",), env=env)
        migrate.start(wait=False)
        assert migrate.process is not None and migrate.process.wait(60) == 0, migrate.output()
        migrate.stop()
    async with receiver() as sink:
        server = InterlinkProcess(tmp_path, database_url=database, env=env).start()
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.post(f"{server.url}/v1/tenants", json={"name": "Crash"}) as answer:
                tenant = (await answer.json())["id"]
            endpoint = {"url": sink.url}
            async with http.post(f"{server.url}/v1/tenants/{tenant}/endpoints", json=endpoint):
                pass
        accepted: dict[int, str] = {}
        numbers = list(range(TOTAL))
        await _post_all(server.url, tenant, numbers, accepted, stop_after=TOTAL // 2)
        server.kill()
        received_before = len(set(sink.ids()))
        restarted = InterlinkProcess(tmp_path, database_url=database, env=env, port=server.port)
        restarted.start()
        try:
            await _post_all(restarted.url, tenant, numbers, accepted, stop_after=None)
            assert len(accepted) == TOTAL
            wanted = set(accepted.values())
            await eventually(lambda: wanted <= set(sink.ids()), timeout=120)
        finally:
            restarted.stop()
        assert received_before < TOTAL  # the kill really happened mid-burst
        url = database or f"sqlite:///{tmp_path}/interlink.db"
        db = Database(url)
        try:
            async with db.transaction() as conn:
                rows = (
                    await conn.execute(
                        select(outbound_deliveries.c.message_id, outbound_deliveries.c.status)
                    )
                ).all()
        finally:
            await db.dispose()
        received = set(sink.ids())
        succeeded = {message_id for message_id, status in rows if status == "succeeded"}
        assert succeeded <= received
        assert wanted <= {message_id for message_id, _ in rows}
