"""Migrations from empty on SQLite and PostgreSQL give the schema the code declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from interlink.store import migrate
from interlink.store.database import Database
from interlink.store.schema import metadata

CORE_TABLES = {"tenants", "api_keys", "jobs", "events", "audit_log", "meta"}


async def test_migrations_from_empty_match_the_declared_schema(db_url: str) -> None:
    db = Database(db_url)
    try:
        await migrate.upgrade(db)
        assert not await migrate.pending(db)

        def _diff(sync_conn: Any) -> tuple[set[str], list[Any]]:
            tables = set(inspect(sync_conn).get_table_names())
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return tables, compare_metadata(context, metadata)

        async with db.engine.connect() as conn:
            tables, diff = await conn.run_sync(_diff)
        assert CORE_TABLES <= tables
        assert diff == []
        # Running again is a no-op.
        await migrate.upgrade(db)
    finally:
        await db.dispose()
