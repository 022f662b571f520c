"""The group commit's deduplication, at the writer: new keys, keys stored by an earlier batch and
keys repeated within one batch, across sources, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import select

from interlink.runtime import Runtime
from interlink.webhooks.inbound.capability import capability
from interlink.webhooks.inbound.rows import accepted_row
from interlink.webhooks.inbound.state import inbound_state
from interlink.webhooks.inbound.tables import inbound_events
from interlink.webhooks.inbound.verifiers import Verified
from interlink.webhooks.inbound.writer import PendingRow, WriteOutcome
from tests.integration.webhooks.inbound.conftest import hub_with

MakeSource = Callable[..., Awaitable[dict[str, Any]]]


async def test_each_key_is_stored_once_per_source_and_every_copy_counted(
    client: httpx.AsyncClient, make_source: MakeSource, inbound_runtime: Runtime
) -> None:
    state = inbound_state(inbound_runtime)
    first = await make_source("stripe", "whsec_group")
    second = await make_source("stripe", "whsec_group")
    configs = {s["id"]: await state.cache.get(s["id"]) for s in (first, second)}

    async def submit(*deliveries: tuple[dict[str, Any], str]) -> list[WriteOutcome]:
        pending = []
        for source, delivery in deliveries:
            config = configs[source["id"]]
            assert config is not None
            verified = Verified(delivery, "invoice.paid", None, None)
            body = b'{"id": "%s"}' % delivery.encode()
            row = accepted_row(config, "/in/x", "application/json", [], body, verified)
            pending.append(PendingRow(row))
        return await asyncio.gather(*(state.writer.submit(item) for item in pending))

    [a, b] = await submit((first, "evt_a"), (second, "evt_b"))
    again = await submit(
        (first, "evt_a"),
        (first, "evt_c"),
        (second, "evt_b"),
        (first, "evt_a"),
        (first, "evt_c"),
        (second, "evt_a"),  # the same delivery id at another source is another event
    )

    assert (a.status, a.seen_count, b.status, b.seen_count) == ("accepted", 1, "accepted", 1)
    assert [(o.status, o.seen_count) for o in again] == [
        ("duplicate", 3),
        ("accepted", 2),
        ("duplicate", 2),
        ("duplicate", 3),
        ("duplicate", 2),
        ("accepted", 1),
    ]
    assert again[0].event_id == again[3].event_id == a.event_id
    assert again[2].event_id == b.event_id
    assert again[1].event_id == again[4].event_id not in (a.event_id, again[5].event_id)
    query = select(
        inbound_events.c.id,
        inbound_events.c.seen_count,
        inbound_events.c.received_at,
        inbound_events.c.last_seen_at,
    )
    async with inbound_runtime.db.transaction() as conn:
        stored = {row.id: row for row in (await conn.execute(query)).all()}
    assert {event_id: row.seen_count for event_id, row in stored.items()} == {
        a.event_id: 3,
        b.event_id: 2,
        again[1].event_id: 2,
        again[5].event_id: 1,
    }
    assert stored[a.event_id].last_seen_at > stored[a.event_id].received_at
    assert stored[again[5].event_id].last_seen_at == stored[again[5].event_id].received_at

    # Three keys of one source (the read pads them to four), one of them stored already.
    third = await submit((first, "evt_d"), (first, "evt_a"), (first, "evt_e"))
    assert [(o.status, o.seen_count) for o in third] == [
        ("accepted", 1),
        ("duplicate", 4),
        ("accepted", 1),
    ]
    assert third[1].event_id == a.event_id


async def test_on_sqlite_a_row_handed_in_one_loop_pass_later_joins_the_batch(
    sqlite_url: str,
) -> None:
    """On SQLite the transaction holds the loop: the writer lets the loop pass once before it
    takes its batch, so a request verified in that pass shares the transaction rather than
    paying one of its own."""
    async with hub_with(sqlite_url, [capability], run_workers=False) as (runtime, http):
        tenant = (await http.post("/v1/tenants", json={"name": "Acme"})).json()["id"]
        made = await http.post(f"/v1/tenants/{tenant}/sources",
                               json={"provider": "stripe", "secret": "whsec_pass"})  # fmt: skip
        state = inbound_state(runtime)
        config = await state.cache.get(made.json()["id"])
        assert config is not None
        batches: list[int] = []
        state.writer._on_batch = batches.append

        def pending(delivery: str) -> PendingRow:
            verified = Verified(delivery, "invoice.paid", None, None)
            body = b'{"id": "%s"}' % delivery.encode()
            return PendingRow(accepted_row(config, "/in/x", "application/json", [], body, verified))

        async def one_pass_later() -> WriteOutcome:
            await asyncio.sleep(0)
            return await state.writer.submit(pending("evt_later"))

        outcomes = await asyncio.gather(state.writer.submit(pending("evt_first")),
                                        one_pass_later())  # fmt: skip
        assert [o.status for o in outcomes] == ["accepted", "accepted"]
        assert batches == [2]
