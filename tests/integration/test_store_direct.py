"""Direct statements on SQLite write exactly what SQLAlchemy writes, in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, select

from interlink.runtime import Runtime
from interlink.store.database import StoreRejected
from interlink.store.direct import DirectStatement, DirectTransaction, run_transaction
from interlink.store.schema import events
from interlink.store.types import UTCDateTime, sqlite_utc_text
from tests.conftest import make_settings


@pytest.fixture
async def runtime(sqlite_url: str) -> Any:
    rt = Runtime(make_settings(sqlite_url), capabilities=[])
    await rt.start(migrate_schema=True)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 23, 3, 4, 5, 12, tzinfo=UTC),
        datetime(2026, 11, 23, 3, 4, 5, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 11, 23, 5, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_utc_text_is_what_sqlalchemy_stores(moment: datetime, runtime: Runtime) -> None:
    dialect = runtime.db.engine.dialect
    through_sqlalchemy = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert through_sqlalchemy is not None
    assert sqlite_utc_text(moment) == through_sqlalchemy(moment)


def test_utc_text_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(datetime(2026, 11, 23, 3, 4, 5))
    assert sqlite_utc_text(None) is None


def _event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "tenant_id": None,
        "type": "dev.interlink.test",
        "source": "/interlink/system/test",
        "subject": "sub",
        "time": datetime(2026, 11, 23, 3, 4, 5, 6, tzinfo=UTC),
        "data": {"nested": {"n": 1}, "text": "é\u2028", "list": [1, None, True]},
        "relayed": False,
        **extra,
    }


async def test_rows_written_directly_read_back_as_written(runtime: Runtime) -> None:
    insert = DirectStatement.insert(events, list(_event("x")), runtime.db.engine.dialect)

    def work(tx: DirectTransaction) -> str:
        tx.execute_many(insert, [_event("evt_direct_1"), _event("evt_direct_2")])
        return "done"

    assert await run_transaction(runtime.db, work) == "done"
    async with runtime.db.transaction() as conn:
        rows = (await conn.execute(select(events).order_by(events.c.id))).mappings().all()
    assert [row["id"] for row in rows] == ["evt_direct_1", "evt_direct_2"]
    expected = _event("evt_direct_1")
    for key in ("time", "data", "relayed", "subject", "type"):
        assert rows[0][key] == expected[key], key


async def test_a_failing_transaction_leaves_nothing_behind(runtime: Runtime) -> None:
    insert = DirectStatement.insert(events, list(_event("x")), runtime.db.engine.dialect)

    def work(tx: DirectTransaction) -> None:
        tx.execute_many(insert, [_event("evt_rolled_back")])
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await run_transaction(runtime.db, work)
    # A constraint violation is the store's error, and rolls back the rows before it too.

    def duplicate(tx: DirectTransaction) -> None:
        tx.execute_many(insert, [_event("evt_first"), _event("evt_first")])

    with pytest.raises(StoreRejected):
        await run_transaction(runtime.db, duplicate)
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(events.c.id))).all() == []
    # The connection is usable afterwards.
    await run_transaction(runtime.db, lambda tx: tx.execute_many(insert, [_event("evt_ok")]))
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(events.c.id))).scalars().all() == ["evt_ok"]


async def test_fetch_returns_every_rows_result_in_order(runtime: Runtime) -> None:
    dialect = runtime.db.engine.dialect
    insert = DirectStatement.insert(events, list(_event("x")), dialect)
    lookup = DirectStatement.compile(
        select(events.c.id, events.c.subject).where(events.c.id == bindparam("id")), dialect
    )

    def work(tx: DirectTransaction) -> list[Any]:
        tx.execute_many(insert, [_event("evt_a", subject="A"), _event("evt_b", subject="B")])
        return tx.fetch(lookup, [{"id": "evt_b"}, {"id": "missing"}, {"id": "evt_a"}])

    found = await run_transaction(runtime.db, work)
    assert [tuple(row) for row in found] == [("evt_b", "B"), ("evt_a", "A")]
