"""Alembic migrations for the core and every capability, run on an async engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from interlink.capability import Capability
from interlink.store.database import Database

__all__ = ["alembic_config", "current_heads", "pending", "upgrade"]

_HERE = Path(__file__).parent / "migrations"


def alembic_config(extra_locations: list[Path] | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    locations = [_HERE / "versions", *(extra_locations or [])]
    config.set_main_option("version_locations", " ".join(str(p) for p in locations))
    config.set_main_option("path_separator", "space")
    return config


def _capability_locations(capabilities: Sequence[Capability] | None = None) -> list[Path]:
    if capabilities is None:
        from interlink.capabilities import load_capabilities

        capabilities = load_capabilities()
    return [cap.migrations for cap in capabilities if cap.migrations is not None]


async def upgrade(
    db: Database, target: str = "heads", *, capabilities: Sequence[Capability] | None = None
) -> None:
    """Apply every migration of the core and of ``capabilities`` (default: the installed)."""
    config = alembic_config(_capability_locations(capabilities))

    def _run(sync_conn: Any) -> None:
        config.attributes["connection"] = sync_conn
        command.upgrade(config, target)

    async with db.connection() as conn, conn.begin():
        await conn.run_sync(_run)


async def current_heads(db: Database) -> set[str]:
    def _heads(sync_conn: Any) -> set[str]:
        return set(MigrationContext.configure(sync_conn).get_current_heads())

    async with db.connection() as conn:
        return await conn.run_sync(_heads)


async def pending(db: Database, *, capabilities: Sequence[Capability] | None = None) -> bool:
    """True when the database is behind the code's migrations."""
    script = ScriptDirectory.from_config(alembic_config(_capability_locations(capabilities)))
    current = await current_heads(db)
    # A branch that depends on another records only its own head, so compare by ancestry.
    applied = {rev.revision for rev in script.iterate_revisions(tuple(current), "base")}
    return any(head not in applied for head in script.get_heads())
