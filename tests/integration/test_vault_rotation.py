"""`keys rotate` re-wraps every registered encrypted column under the first master key."""

from __future__ import annotations

import secrets

from sqlalchemy import Column, MetaData, String, Table, select

from interlink.capability import EncryptedColumn
from interlink.store.database import Database
from interlink.vault import MasterKey, Vault
from interlink.vault.rotate import rotate_secrets


async def test_rotation_rewraps_every_row(db_url: str) -> None:
    db = Database(db_url)
    table = Table(
        "rotation_secrets",
        MetaData(),
        Column("id", String(40), primary_key=True),
        Column("secret", String(2000), nullable=True),
    )
    async with db.engine.begin() as conn:
        await conn.run_sync(table.create)
    old, new = MasterKey(secrets.token_bytes(32)), MasterKey(secrets.token_bytes(32))
    before = Vault([old])
    rows = [
        {"id": f"row_{n:04d}", "secret": before.encrypt(f"token-{n}", context=f"r:{n}")}
        for n in range(1203)
    ]
    rows.append({"id": "row_null", "secret": None})
    async with db.transaction() as conn:
        await conn.execute(table.insert(), rows)
    after = Vault([new, old])
    spec = [EncryptedColumn("rotation_secrets", "id", "secret")]
    counts = await rotate_secrets(db, after, spec, batch=500)
    assert counts == {"rotation_secrets.secret": 1203}
    only_new = Vault([new])
    async with db.transaction() as conn:
        stored = (await conn.execute(select(table).where(table.c.secret.is_not(None)))).all()
    for row_id, ciphertext in stored:
        n = int(row_id.split("_")[1])
        assert only_new.decrypt(ciphertext, context=f"r:{n}") == f"token-{n}"
    assert await rotate_secrets(db, after, spec) == {"rotation_secrets.secret": 0}
    await db.dispose()
