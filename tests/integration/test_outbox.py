"""The transactional outbox and its relay; envelopes checked with the official cloudevents SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from interlink.events import EventHead, EventRelay, InMemorySubscriber
from interlink.events.outbox import OutboxEvent
from interlink.runtime import Runtime
from interlink.store.direct import DirectTransaction, run_transaction
from interlink.store.schema import events
from tests.conftest import make_settings


class _OnlyType(InMemorySubscriber):
    """Takes the events of one type and remembers every head it was shown."""

    def __init__(self, name: str, event_type: str) -> None:
        super().__init__(name)
        self.event_type = event_type
        self.shown: list[EventHead] = []

    async def wanted(self, conn: Any, heads: Sequence[EventHead]) -> Collection[int]:
        self.shown.extend(heads)
        return [head.seq for head in heads if head.type == self.event_type]


class _OnlyTypeOnThread(_OnlyType):
    """:class:`_OnlyType` that can also choose in a direct transaction, and counts where it
    chose."""

    def __init__(self, name: str, event_type: str) -> None:
        super().__init__(name, event_type)
        self.on_thread: list[EventHead] = []

    def wanted_direct(self, tx: DirectTransaction, heads: Sequence[EventHead]) -> Collection[int]:
        self.on_thread.extend(heads)
        return [head.seq for head in heads if head.type == self.event_type]


@pytest.fixture
async def sqlite_runtime(sqlite_url: str) -> AsyncIterator[Runtime]:
    """A runtime on SQLite only, for what happens there alone (the skim, settling)."""
    runtime = Runtime(make_settings(sqlite_url), capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        yield runtime
    finally:
        await runtime.close()


async def _unrelayed(runtime: Runtime) -> int:
    async with runtime.db.transaction() as conn:
        rows = await conn.execute(events.select().where(events.c.relayed.is_(False)))
        return len(rows.all())


async def test_events_exist_only_when_the_change_commits(runtime: Runtime) -> None:
    with pytest.raises(RuntimeError):
        async with runtime.db.transaction() as conn:
            await runtime.outbox.emit(conn, "tenant.created", {}, tenant_id=None, component="x")
            raise RuntimeError("rolled back")
    assert await runtime.outbox.list(tenant_id=None) == []


async def test_relay_hands_events_on_in_order_and_once(runtime: Runtime) -> None:
    subscriber = InMemorySubscriber()
    relay = EventRelay(runtime.outbox, [subscriber], poll_seconds=0.05)
    async with runtime.db.transaction() as conn:
        for n in range(5):
            await runtime.outbox.emit(
                conn,
                "record.updated",
                {"n": n},
                tenant_id="ten_1",
                component="sync",
                subject="rec_1",
            )
    relay_once = relay.relay_once
    passes_after = 0  # passes the relay began once all five had arrived

    async def counted_pass() -> int:
        nonlocal passes_after
        after = len(subscriber.received) >= 5
        count = await relay_once()
        passes_after += after
        return count

    relay.relay_once = counted_pass  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(30):
            # Every event, then two more passes: room for any event handed on twice.
            while passes_after < 2:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    assert [event["data"]["n"] for event in subscriber.received] == [0, 1, 2, 3, 4]
    assert await relay.relay_once() == 0


async def test_envelope_is_valid_cloudevents(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await runtime.outbox.emit(
            conn,
            "webhook.received",
            {"provider": "stripe"},
            tenant_id="ten_1",
            component="webhooks",
            subject="src_1",
        )
    (envelope,) = await runtime.outbox.list(tenant_id="ten_1")
    import orjson

    event = JSONFormat().read(CloudEvent, orjson.dumps(envelope))
    assert event.get_type() == "dev.interlink.webhook.received"
    assert event.get_source() == "/interlink/ten_1/webhooks"
    assert event.get_subject() == "src_1"
    assert event.get_extension("tenantid") == "ten_1"
    assert event.get_data() == {"provider": "stripe"}


async def test_each_subscriber_gets_only_what_it_chose_and_everything_is_marked(
    runtime: Runtime,
) -> None:
    updated = _OnlyType("updated", "dev.interlink.record.updated")
    deleted = _OnlyType("deleted", "dev.interlink.record.deleted")
    nobody = _OnlyType("nobody", "dev.interlink.nothing.happened")
    relay = EventRelay(runtime.outbox, [updated, deleted, nobody], batch_size=4)
    names = ["record.updated", "request.completed", "record.deleted", "record.updated"] * 3
    async with runtime.db.transaction() as conn:
        await runtime.outbox.emit_many(
            conn, [OutboxEvent(name, {"n": n}, "ten_1", "sync") for n, name in enumerate(names)]
        )
    assert [await relay.relay_once() for _ in range(4)] == [4, 4, 4, 0]
    assert [event["data"]["n"] for event in updated.received] == [0, 3, 4, 7, 8, 11]
    assert [event["data"]["n"] for event in deleted.received] == [2, 6, 10]
    assert nobody.received == []
    assert [head.type for head in nobody.shown] == [f"dev.interlink.{n}" for n in names]
    assert await _unrelayed(runtime) == 0


async def test_events_written_alone_reach_the_relay_and_the_log(runtime: Runtime) -> None:
    subscriber = InMemorySubscriber()
    woken: list[bool] = []
    runtime.outbox.add_wake_listener(lambda: woken.append(True))
    batch = [
        OutboxEvent("request.completed", {"status": 200 + n}, "ten_1", "connections", "con_1")
        for n in range(3)
    ]
    await runtime.outbox.emit_alone(batch)
    assert woken
    # Listed by id, which orders by the millisecond only; the relay keeps the written order.
    listed = await runtime.outbox.list(tenant_id="ten_1")
    assert sorted(event["data"]["status"] for event in listed) == [200, 201, 202]
    assert {event["source"] for event in listed} == {"/interlink/ten_1/connections"}
    relay = EventRelay(runtime.outbox, [subscriber])
    assert await relay.relay_once() == 3
    assert [event["data"]["status"] for event in subscriber.received] == [200, 201, 202]
    assert sorted(subscriber.received, key=lambda event: event["id"]) == listed


async def test_events_nobody_wants_are_skimmed_in_one_transaction_on_sqlite(
    runtime: Runtime,
) -> None:
    nobody = _OnlyTypeOnThread("nobody", "dev.interlink.nothing.happened")
    relay = EventRelay(runtime.outbox, [nobody], batch_size=4)
    async with runtime.db.transaction() as conn:
        await runtime.outbox.emit_many(
            conn, [OutboxEvent("request.completed", {"n": n}, "ten_1", "proxy") for n in range(6)]
        )
    assert [await relay.relay_once() for _ in range(3)] == [4, 2, 0]
    assert await _unrelayed(runtime) == 0
    assert nobody.received == []
    if runtime.db.is_postgres:  # no skim: every pass chose through the relay's transaction
        assert (len(nobody.shown), nobody.on_thread) == (6, [])
    else:
        assert (nobody.shown, len(nobody.on_thread)) == ([], 6)


async def test_a_skim_that_finds_a_wanted_event_leaves_the_pass_to_the_usual_way(
    sqlite_runtime: Runtime,
) -> None:
    runtime = sqlite_runtime
    updated = _OnlyTypeOnThread("updated", "dev.interlink.record.updated")
    relay = EventRelay(runtime.outbox, [updated])

    async def emit(*names: str) -> None:
        async with runtime.db.transaction() as conn:
            await runtime.outbox.emit_many(
                conn,
                [OutboxEvent(name, {"n": n}, "ten_1", "sync") for n, name in enumerate(names)],
            )

    await emit("request.completed", "record.updated", "request.completed")
    assert await relay.relay_once() == 3
    # The skim saw all three, wrote nothing, and the usual pass chose and handed on.
    assert (len(updated.on_thread), len(updated.shown)) == (3, 3)
    assert [event["data"]["n"] for event in updated.received] == [1]
    await emit("request.completed")
    assert await relay.relay_once() == 1  # after a pass that took something: no skim
    assert (len(updated.on_thread), len(updated.shown)) == (3, 4)
    await emit("request.completed")
    assert await relay.relay_once() == 1  # after one that took nothing: skimmed again
    assert (len(updated.on_thread), len(updated.shown)) == (4, 4)
    assert await _unrelayed(runtime) == 0
    assert len(updated.received) == 1


def _untaken_then_taken(n: int) -> list[OutboxEvent]:
    """A ``request.completed`` (data ``n``) nobody takes, then a ``record.updated`` (``n + 1``)."""
    return [
        OutboxEvent("request.completed", {"n": n}, "ten_1", "proxy"),
        OutboxEvent("record.updated", {"n": n + 1}, "ten_1", "sync"),
    ]


async def _only_the_taken_one_is_left_to(
    relay: EventRelay, runtime: Runtime, woken: list[None], updated: _OnlyType, n: int
) -> None:
    """After :func:`_untaken_then_taken`: the relay was woken once, and hands on event ``n``."""
    assert len(woken) == 1
    assert await _unrelayed(runtime) == 1
    assert await relay.relay_once() == 1
    assert [event["data"]["n"] for event in updated.received] == [n]


async def test_a_settling_relay_has_the_outbox_store_unwanted_events_relayed(
    runtime: Runtime,
) -> None:
    updated = _OnlyTypeOnThread("updated", "dev.interlink.record.updated")
    relay = EventRelay(runtime.outbox, [updated], settles=True, metrics=runtime.metrics)
    woken: list[None] = []
    runtime.outbox.add_wake_listener(lambda: woken.append(None))
    batch = [
        OutboxEvent(name, {"n": n}, "ten_1", "proxy")
        for n, name in enumerate(["request.completed", "request.completed"])
    ]
    await runtime.outbox.emit_alone(batch)
    # Chosen in the insert's own transaction: stored relayed, and the relay is not woken.
    assert (len(updated.on_thread), woken) == (2, [])
    assert await _unrelayed(runtime) == 0
    async with runtime.db.transaction() as conn:
        rows = (await conn.execute(events.select())).mappings().all()
    assert all(row["relayed_at"] == row["time"] for row in rows)
    assert runtime.metrics.events_relayed._value.get() == 2
    assert await relay.relay_once() == 0
    # An event a subscriber takes is left to the relay, which hands it on as usual.
    await runtime.outbox.emit_alone(_untaken_then_taken(2))
    await _only_the_taken_one_is_left_to(relay, runtime, woken, updated, 3)
    assert len(await runtime.outbox.list(tenant_id="ten_1")) == 4  # every event is kept


async def test_only_a_settling_relay_whose_subscribers_all_choose_changes_what_is_stored(
    runtime: Runtime,
) -> None:
    nobody = _OnlyTypeOnThread("nobody", "dev.interlink.nothing.happened")
    EventRelay(runtime.outbox, [nobody])  # settles=False: the outbox is left alone
    await runtime.outbox.emit_alone([OutboxEvent("request.completed", {}, "ten_1", "proxy")])
    assert await _unrelayed(runtime) == 1
    EventRelay(runtime.outbox, [nobody, InMemorySubscriber()], settles=True)  # one cannot choose
    await runtime.outbox.emit_alone([OutboxEvent("request.completed", {}, "ten_1", "proxy")])
    assert await _unrelayed(runtime) == 2
    assert (nobody.on_thread, nobody.shown) == ([], [])
    EventRelay(runtime.outbox, [nobody], settles=True)
    await runtime.outbox.emit_alone([OutboxEvent("request.completed", {}, "ten_1", "proxy")])
    assert await _unrelayed(runtime) == 2
    # Chosen in the insert's direct transaction, on either store.
    assert (len(nobody.on_thread), nobody.shown) == (1, [])


async def test_on_postgresql_every_emit_settles_and_wakes_the_relay_only_for_the_rest(
    pg_url: str,
) -> None:
    runtime = Runtime(make_settings(pg_url), capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        updated = _OnlyTypeOnThread("updated", "dev.interlink.record.updated")
        relay = EventRelay(runtime.outbox, [updated], settles=True, metrics=runtime.metrics)
        woken: list[None] = []
        runtime.outbox.add_wake_listener(lambda: woken.append(None))
        async with runtime.db.transaction() as conn:
            await runtime.outbox.emit(
                conn, "request.completed", {"n": 0}, tenant_id="ten_1", component="proxy"
            )
        # Chosen in the insert's transaction: stored relayed, and nobody is woken.
        assert (len(updated.shown), woken) == (1, [])
        assert await _unrelayed(runtime) == 0
        assert runtime.metrics.events_relayed._value.get() == 1
        async with runtime.db.transaction() as conn:
            await runtime.outbox.emit_many(conn, _untaken_then_taken(1))
        await _only_the_taken_one_is_left_to(relay, runtime, woken, updated, 2)
        async with runtime.db.transaction() as conn:
            rows = (await conn.execute(events.select().order_by(events.c.seq))).mappings().all()
        assert [row["relayed"] for row in rows] == [True, True, True]
        assert rows[0]["relayed_at"] == rows[0]["time"]
        # A failed transaction takes its events with it, settled or not.
        with pytest.raises(RuntimeError):
            async with runtime.db.transaction() as conn:
                await runtime.outbox.emit(conn, "request.completed", {}, tenant_id="ten_1",
                                          component="proxy")  # fmt: skip
                raise RuntimeError("rolled back")
        assert len(await runtime.outbox.list(tenant_id="ten_1")) == 3
    finally:
        await runtime.close()


async def test_settling_rows_again_follows_the_new_choice(sqlite_runtime: Runtime) -> None:
    # A direct transaction may run twice (its first try found the write lock taken midway).
    runtime = sqlite_runtime
    chooser = _OnlyTypeOnThread("changing", "dev.interlink.nothing.happened")
    runtime.outbox.settle_with([chooser])
    rows = runtime.outbox.rows([OutboxEvent("record.updated", {}, "ten_1", "sync")])

    assert await run_transaction(runtime.db, runtime.outbox.settle, rows) is False
    assert (rows[0]["relayed"], rows[0]["relayed_at"]) == (True, rows[0]["time"])
    chooser.event_type = "dev.interlink.record.updated"
    assert await run_transaction(runtime.db, runtime.outbox.settle, rows) is True
    assert (rows[0]["relayed"], rows[0]["relayed_at"]) == (False, None)
