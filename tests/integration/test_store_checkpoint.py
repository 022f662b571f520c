"""The write-ahead log is copied back into the database file by a thread of its own."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path

from interlink.store.checkpoint import BACKSTOP_PAGES, WalCheckpointer
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
    await db.start_checkpoints()
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
    await db.start_checkpoints()
    await db.start_checkpoints()  # a second start changes nothing
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


async def _autocheckpoint(db: Database) -> int:
    async with db.connection() as conn:
        pages = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
    assert isinstance(pages, int)
    return pages


async def test_while_the_thread_runs_commits_leave_the_log_to_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert await _autocheckpoint(db) == 1000  # SQLite's own, on the connection already open
        await db.start_checkpoints()
        assert await _autocheckpoint(db) == BACKSTOP_PAGES
        await db.engine.dispose()  # a connection opened from now on is set up the same
        assert await _autocheckpoint(db) == BACKSTOP_PAGES
    finally:
        await db.dispose()
    assert await _autocheckpoint(db) == 1000  # without the thread, commits checkpoint again
    await db.engine.dispose()


def _wal_restarts(wal: Path) -> int:
    """The log header's checkpoint sequence number: it goes up each time the log starts over."""
    with wal.open("rb") as log_file:
        return int.from_bytes(log_file.read(16)[12:16], "big")


def test_the_log_starts_over_while_commits_keep_coming(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # as the store's connections leave it
    writer.execute("PRAGMA synchronous=NORMAL")  # as the store's: commits do not sync the log
    writer.execute("CREATE TABLE blobs (b BLOB)")
    wal = tmp_path / "store.db-wal"
    first = _wal_restarts(wal)
    checkpointer = WalCheckpointer(str(path), interval=0.01, restart_at=100)
    checkpointer.start()
    stop = threading.Event()
    commits = 0

    def write() -> None:
        # Commits of more pages each than the FULL checkpoint's threshold, a few milliseconds
        # apart: the checkpoint after each finds a long log, whether or not the PASSIVE ones
        # before it had caught up (then the log would start over without a FULL one).
        nonlocal commits
        while not stop.wait(0.005):
            writer.execute("BEGIN IMMEDIATE")
            writer.executemany("INSERT INTO blobs (b) VALUES (?)", [(os.urandom(4000),)] * 120)
            writer.execute("COMMIT")
            commits += 1

    thread = threading.Thread(target=write)
    thread.start()
    largest, restarts = 0, 0
    # Until the log has started over after enough commits; a loaded machine takes longer.
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            threading.Event().wait(0.05)
            largest = max(largest, wal.stat().st_size // 4096)
            restarts = _wal_restarts(wal) - first  # before the last close removes the log
            if commits > 20 and restarts > 0 and checkpointer.full_checkpoints > 0:
                break
    finally:
        stop.set()
        thread.join()
        checkpointer.stop(timeout=5)
        writer.close()
    assert commits > 20, commits  # more than 2,400 pages of log were written
    assert checkpointer.full_checkpoints > 0
    assert restarts > 0  # the log started over from its beginning
    assert largest < 1000, largest
