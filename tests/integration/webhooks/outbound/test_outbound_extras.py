"""OAuth2 client-credentials endpoints, the shared rate-limit bucket, payload and message
retention, CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import insert, select, update

from interlink.runtime import Runtime
from interlink.webhooks.outbound.ratelimit import take_slots
from interlink.webhooks.outbound.retention import PURGE_JOB, purge_messages, purge_payloads
from interlink.webhooks.outbound.tables import (
    outbound_attempts,
    outbound_deliveries,
    outbound_messages,
)
from tests.conftest import ADMIN_TOKEN, MASTER_KEY
from tests.integration.store_support import made_at, until_a_run_succeeded
from tests.integration.webhooks.outbound.outbound_support import (
    Received,
    attempts_of,
    eventually,
    new_endpoint,
    new_tenant,
    outbound_client,
    outbound_runtime,
    outbound_settings,
    receiver,
    send,
)


async def test_oauth2_token_is_fetched_cached_and_refreshed_after_401(sqlite_url: str) -> None:
    tokens: list[str] = []
    refuse = {"next": False}

    async def service(item: Received, _: int) -> web.StreamResponse:
        if item.path == "/token":
            assert item.headers["Authorization"].startswith("Basic ")
            assert b"grant_type=client_credentials" in item.body
            tokens.append(f"t{len(tokens) + 1}")
            return web.json_response({"access_token": tokens[-1], "expires_in": 3600})
        if refuse["next"]:
            refuse["next"] = False
            return web.Response(status=401)
        return web.Response(text="ok")

    runtime = outbound_runtime(sqlite_url, retry_schedule="20ms,20ms")
    async with receiver(service) as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        auth = {
            "type": "oauth2_client_credentials",
            "token_url": f"http://127.0.0.1:{sink.port}/token",
            "client_id": "cid",
            "client_secret": "csecret",
            "scope": "webhooks",
        }
        await new_endpoint(client, tenant, url=sink.url, auth=auth)
        for _ in range(2):
            await send(client, tenant)
        await eventually(lambda: sum(i.path == "/hook" for i in sink.received) == 2)
        hooks = [i for i in sink.received if i.path == "/hook"]
        assert {i.headers["Authorization"] for i in hooks} == {"Bearer t1"}
        assert tokens == ["t1"]
        refuse["next"] = True
        message = await send(client, tenant)
        await eventually(lambda: sum(i.path == "/hook" for i in sink.received) == 4)
        assert tokens == ["t1", "t2"]

        async def logged() -> bool:
            log = await attempts_of(client, tenant, message["id"])
            return [a["response_status_code"] for a in log] == [401, 200]

        await eventually(logged)


async def test_rate_limit_bucket_is_shared_through_the_store(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url, rate_limit=10)
        first = await take_slots(runtime.db, endpoint["id"], 10.0, 15, now=1000.0)
        assert first[:10] == [0.0] * 10 and all(w > 0 for w in first[10:])
        assert first[10:] == sorted(first[10:])  # refused ones come back at their own slots
        # Another worker at the same instant finds the bucket empty: the limit is global.
        assert all(w > 0 for w in await take_slots(runtime.db, endpoint["id"], 10.0, 3, now=1000.0))
        # A second later, ten more may go.
        later = await take_slots(runtime.db, endpoint["id"], 10.0, 12, now=1001.0)
        assert later.count(0.0) == 10


async def test_rate_limited_endpoint_still_gets_everything(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url, rate_limit=20)
        sent = {(await send(client, tenant, payload={"n": n}))["id"] for n in range(30)}
        await eventually(lambda: set(sink.ids()) == sent, timeout=20)
        assert len(sink.received) == 30


async def test_retention_purges_payloads_and_keeps_the_attempts_log(sqlite_url: str) -> None:
    runtime = outbound_runtime(sqlite_url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        await new_endpoint(client, tenant, url=sink.url)
        old = await send(client, tenant, id="k-1")

        async def logged() -> bool:
            return len(await attempts_of(client, tenant, old["id"])) == 1

        await eventually(logged)
        # The purge that starting workers ask for runs beside the test: once it has run it
        # cannot take the payload this test means to purge itself.
        await until_a_run_succeeded(runtime, PURGE_JOB)
        async with runtime.db.transaction() as conn:
            await conn.execute(
                update(outbound_messages)
                .where(outbound_messages.c.id == old["id"])
                .values(created_at=datetime.now(UTC) - timedelta(days=31))
            )
        purged = await purge_payloads(
            runtime.db, payload_retention=timedelta(days=30), idempotency_window=timedelta(days=1)
        )
        assert purged == 1
        got = (await client.get(f"/v1/tenants/{tenant}/messages/{old['id']}")).json()
        assert got["payload"] is None and got["payload_purged"] is True
        assert len(await attempts_of(client, tenant, old["id"])) == 1
        again = await send(client, tenant, id="k-1")  # the key is free after its window
        assert again["id"] != old["id"]
        endpoint_id = got["deliveries"][0]["endpoint_id"]
        resend = await client.post(
            f"/v1/tenants/{tenant}/messages/{old['id']}/endpoints/{endpoint_id}/resend"
        )
        assert resend.status_code == 409


async def test_the_purge_changes_a_batch_per_transaction_until_none_is_left(db_url: str) -> None:
    runtime = outbound_runtime(db_url)
    async with outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        now = datetime.now(UTC)
        ages = [timedelta(days=31)] * 7 + [timedelta(days=2)] * 2 + [timedelta(hours=1)]
        rows = [
            {"id": f"msg_{n:026d}", "tenant_id": tenant, "event_type": "invoice.paid",
             "payload": {"n": n}, "idempotency_key": f"key-{n}", "created_at": now - age}
            for n, age in enumerate(ages)
        ]  # fmt: skip
        async with runtime.db.transaction() as conn:
            await conn.execute(insert(outbound_messages), rows)

        purged = await purge_payloads(
            runtime.db,
            payload_retention=timedelta(days=30),
            idempotency_window=timedelta(days=1),
            batch=3,
        )

        assert purged == 7
        async with runtime.db.transaction() as conn:
            found = (await conn.execute(select(outbound_messages).order_by("id"))).mappings().all()
        assert [row["payload"] is None for row in found] == [True] * 7 + [False] * 3
        assert [row["idempotency_key"] for row in found] == [None] * 9 + ["key-9"]
        assert all(row["payload_purged_at"] is not None for row in found[:7])


async def test_messages_past_their_retention_go_with_deliveries_and_attempts(
    db_url: str,
) -> None:
    runtime = outbound_runtime(db_url)
    async with receiver() as sink, outbound_client(runtime, run_workers=False) as client:
        tenant = await new_tenant(client)
        endpoint = (await new_endpoint(client, tenant, url=sink.url))["id"]
        now = datetime.now(UTC)
        old, young = now - timedelta(days=91), now - timedelta(days=89)
        # Five old messages, one of them still pending, and two young ones.
        plan = [(old, n, "succeeded") for n in range(4)] + [(old, 4, "pending")]
        plan += [(young, n, "failed") for n in range(2)]
        messages, deliveries, attempts = [], [], []
        for made, n, status in plan:
            message_id = made_at("msg", made, n)
            messages.append({"id": message_id, "tenant_id": tenant, "event_type": "invoice.paid",
                             "payload": None, "created_at": made})  # fmt: skip
            deliveries.append({"id": made_at("dlv", made, n), "tenant_id": tenant,
                               "message_id": message_id, "endpoint_id": endpoint,
                               "status": status, "created_at": made, "updated_at": made})  # fmt: skip
            attempts.append({"id": made_at("att", made, n), "tenant_id": tenant,
                             "message_id": message_id, "endpoint_id": endpoint,
                             "event_type": "invoice.paid", "status": "failed",
                             "trigger": "scheduled", "url": sink.url, "duration_ms": 1.0,
                             "created_at": made})  # fmt: skip
        async with runtime.db.transaction() as conn:
            await conn.execute(insert(outbound_messages), messages)
            await conn.execute(insert(outbound_deliveries), deliveries)
            await conn.execute(insert(outbound_attempts), attempts)

        assert await purge_messages(runtime.db, older_than=timedelta(days=90), batch=2) == 4

        kept = {messages[4]["id"], messages[5]["id"], messages[6]["id"]}
        assert await _message_ids(runtime, outbound_messages.c.id) == kept
        # The deleted messages' deliveries went with them.
        assert await _message_ids(runtime, outbound_deliveries.c.message_id) == kept
        # Every old attempt goes, the pending message's too; the young ones stay.
        young_ids = {messages[5]["id"], messages[6]["id"]}
        assert await _message_ids(runtime, outbound_attempts.c.message_id) == young_ids
        assert await purge_messages(runtime.db, older_than=timedelta(days=90)) == 0


async def _message_ids(runtime: Runtime, column: Any) -> set[str]:
    async with runtime.db.transaction() as conn:
        return set((await conn.execute(select(column))).scalars())


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INTERLINK_DATABASE_URL": url,
        "INTERLINK_ADMIN_TOKEN": ADMIN_TOKEN,
        "INTERLINK_MASTER_KEY": MASTER_KEY,
        "INTERLINK_LOG_LEVEL": "warning",
    }
    return subprocess.run(
        [sys.executable, "-m", "interlink", "webhooks", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_tail_and_resend(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/interlink.db"
    runtime = outbound_runtime(url)
    async with receiver() as sink, outbound_client(runtime) as client:
        tenant = await new_tenant(client)
        endpoint = await new_endpoint(client, tenant, url=sink.url)
        message = await send(client, tenant)
        await eventually(lambda: len(sink.received) == 1)
    tail = await asyncio.to_thread(_cli, url, "tail", "--once")
    assert tail.returncode == 0, tail.stderr
    assert message["id"] in tail.stdout and "succeeded" in tail.stdout and "200" in tail.stdout
    resent = await asyncio.to_thread(
        _cli, url, "resend", message["id"], "--endpoint", endpoint["id"]
    )
    assert resent.returncode == 0, resent.stderr
    assert f"resending {message['id']} to {endpoint['id']}" in resent.stdout
    missing = await asyncio.to_thread(_cli, url, "resend", "msg_nope")
    assert missing.returncode != 0 and "no message msg_nope" in (missing.stdout + missing.stderr)
    # A mistyped tenant or endpoint is said at once (tail used to follow nothing, for ever).
    for args, said in (
        (("--tenant", "ten_nope"), "there is no tenant ten_nope"),
        (("--endpoint", "ep_nope"), "there is no endpoint ep_nope"),
        (
            ("--tenant", tenant, "--endpoint", "ep_nope"),
            f"there is no endpoint ep_nope of {tenant}",
        ),
    ):
        unknown = await asyncio.to_thread(_cli, url, "tail", *args)
        assert unknown.returncode != 0 and said in unknown.stderr, unknown
        assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    # The CLI migrated every installed capability's branch: reopen with all of them. First,
    # without workers, point the endpoint at a fresh receiver; then let the resend run.
    from interlink.webhooks.outbound.tables import outbound_endpoints

    async with receiver() as sink2:
        runtime = Runtime(outbound_settings(url))
        async with outbound_client(runtime, run_workers=False):
            async with runtime.db.transaction() as conn:
                await conn.execute(
                    update(outbound_endpoints)
                    .where(outbound_endpoints.c.id == endpoint["id"])
                    .values(url=sink2.url)
                )
        runtime = Runtime(outbound_settings(url))
        async with outbound_client(runtime):
            await eventually(lambda: sink2.ids() == [message["id"]])
            rows: list[str] = []

            async def both_logged() -> bool:
                async with runtime.db.transaction() as conn:
                    found = await conn.execute(select(outbound_attempts.c.status))
                    rows[:] = found.scalars().all()
                return len(rows) == 2

            await eventually(both_logged)
        assert rows == ["succeeded", "succeeded"]
    assert orjson.loads(sink2.received[0].body)["type"] == "invoice.paid"
