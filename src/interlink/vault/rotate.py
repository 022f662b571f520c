"""Re-wrap every stored secret under the first master key (``interlink keys rotate``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import column, select, table, update
from sqlalchemy.sql.expression import ColumnClause

from interlink.capability import EncryptedColumn
from interlink.store.database import Database
from interlink.vault.crypto import Vault

__all__ = ["rotate_secrets"]


async def rotate_secrets(
    db: Database, vault: Vault, columns: Sequence[EncryptedColumn], *, batch: int = 500
) -> dict[str, int]:
    """Re-wrap values not under the current key; returns how many per ``table.column``."""
    counts: dict[str, int] = {}
    for spec in columns:
        key_col: ColumnClause[Any] = column(spec.key_column)
        value_col: ColumnClause[str] = column(spec.column)
        target = table(spec.table, key_col, value_col)
        done = 0
        after: object = None
        while True:
            query = select(key_col, value_col).order_by(key_col).limit(batch)
            if after is not None:
                query = query.where(key_col > after)
            async with db.transaction() as conn:
                rows = (await conn.execute(query)).all()
                for key, value in rows:
                    if value is None or vault.key_id_of(value) == vault.current_key_id:
                        continue
                    await conn.execute(
                        update(target)
                        .where(key_col == key)
                        .values({spec.column: vault.rewrap(value)})
                    )
                    done += 1
            if len(rows) < batch:
                break
            after = rows[-1][0]
        counts[f"{spec.table}.{spec.column}"] = done
    return counts
