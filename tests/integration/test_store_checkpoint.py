"""The write-ahead log is copied back into the database file by a thread of its own."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

from interlink.store.checkpoint import WalCheckpointer
from interlink.store.database import Database

# Fewer pages than the commit's own checkpoint waits for (1,000), more than one burst (64):
# only the checkpoint thread can move them into the database file.
_ROWS = 300
_ROW_BYTES = 4000


async def _write_rows(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.exec_driver_sql("CREATE TABLE blobs (b BLOB)")
    for _ in range(_ROWS // 30):
        async with db.transaction() as conn:
            rows = [(os.urandom(_ROW_BYTES),) for _ in range(30)]
            await conn.exec_driver_sql("INSERT INTO blobs (b) VALUES (?)", rows)


async def _file_size_after(path: Path, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return path.stat().st_size


async def test_the_checkpoint_thread_copies_the_log_into_the_database_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    db = Database(f"sqlite:///{path}")
    db.start_checkpoints()
    try:
        await _write_rows(db)
        written = _ROWS * _ROW_BYTES
        for _ in range(100):
            if path.stat().st_size >= written:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size >= written
        # Every page of the log is in the database file now: a checkpoint finds nothing new.
        with sqlite3.connect(path) as reader:
            busy, pages, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, copied) == (0, pages) and pages > 0
    finally:
        await db.dispose()


async def test_without_the_thread_the_log_stays_in_the_log(tmp_path: Path) -> None:
    # The control for the test above: the commit's own checkpoint does not copy this little.
    path = tmp_path / "store.db"
    db = Database(f"sqlite:///{path}")
    try:
        await _write_rows(db)
        assert await _file_size_after(path, 0.5) < _ROWS * _ROW_BYTES / 10
        assert (tmp_path / "store.db-wal").stat().st_size >= _ROWS * _ROW_BYTES
    finally:
        await db.dispose()


async def test_dispose_stops_the_thread(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    before = set(threading.enumerate())
    db.start_checkpoints()
    db.start_checkpoints()  # a second start changes nothing
    started = [
        t for t in set(threading.enumerate()) - before if t.name == "interlink-wal-checkpoint"
    ]
    assert len(started) == 1
    await db.dispose()
    assert not started[0].is_alive()


def test_a_missing_database_file_is_waited_for_never_created(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    checkpointer = WalCheckpointer(str(path), interval=0.01)
    checkpointer.start()
    try:
        threading.Event().wait(0.2)
        assert not path.exists()
    finally:
        checkpointer.stop(timeout=5)
    assert checkpointer.checkpoints == 0
