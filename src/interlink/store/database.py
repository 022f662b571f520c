"""The engine for SQLite (WAL) or PostgreSQL behind one URL, and transactions with commit hooks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable

from interlink import exact_json
from interlink.store import sqlite_driver
from interlink.store.checkpoint import BACKSTOP_PAGES, WalCheckpointer

__all__ = ["Database", "StoreUnavailable", "on_commit", "pipelined", "translate_url"]

_ON_COMMIT = "interlink_on_commit"


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the work; the caller should answer 503."""


class StoreRejected(Exception):
    """The database refused a value (out of range, invalid encoding) or a duplicate.

    ``conflict`` is true for a uniqueness or foreign-key violation (409), false for a value the
    column cannot hold (422). Both are the caller's input, never a server fault.
    """

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.conflict = conflict


_PIPELINED = {sqlite_driver.PIPELINED: True}
_INLINE = {sqlite_driver.INLINE: True}
_S = TypeVar("_S", bound=Executable)


def pipelined(statement: _S) -> _S:
    """``statement`` marked as a write whose result the caller never reads (no rows, no row
    count), so that on SQLite it is sent to the connection's thread without waiting for it.

    Its failure, if any, comes out of the next statement that is waited for, or the commit,
    and rolls the whole transaction back. Elsewhere the mark changes nothing.
    """
    return statement.execution_options(**_PIPELINED)


def translate_url(url: str) -> str:
    """Map the user's ``sqlite:///`` / ``postgresql://`` URL to the async driver we use."""
    scheme, _, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+{sqlite_driver.DRIVER_NAME}://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database URL scheme {scheme!r}")


def on_commit(conn: AsyncConnection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the transaction ``conn`` is in has committed (not on rollback)."""
    conn.info.setdefault(_ON_COMMIT, []).append(callback)


def _describe(error: BaseException) -> str:
    cause = error.orig if isinstance(error, exc.DBAPIError) and error.orig else error
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text[:200]


async def signal_on_commit(
    conn: AsyncConnection, channel: str, wake: Callable[[], None], *, postgres: bool
) -> None:
    """Once per transaction: ``NOTIFY channel`` on PostgreSQL (other processes), and ``wake``
    after the commit (this process). Used by the queue and the outbox."""
    flag = f"interlink_signalled:{channel}"
    if conn.info.get(flag):
        return
    conn.info[flag] = True
    if postgres:
        await conn.exec_driver_sql(f"NOTIFY {channel}")
    info = conn.info

    def _after() -> None:
        info.pop(flag, None)
        wake()

    on_commit(conn, _after)


class Database:
    """One async engine and the dialect facts the rest of Interlink asks about."""

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "normal"):
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        # JSON columns keep integers beyond 64 bits exact (providers' payloads hold some). On
        # PostgreSQL the deserializer is also asyncpg's json and jsonb decoder, so the direct
        # transactions (store.direct) read them exactly too.
        kwargs: dict[str, Any] = {
            "json_serializer": exact_json.dumps_text,
            "json_deserializer": exact_json.loads,
        }
        self._checkpointer: WalCheckpointer | None = None
        self._autocheckpoint = 1000  # SQLite's own default, until the checkpoint thread runs
        if self.dialect == "sqlite":
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._checkpointer = WalCheckpointer(path, synchronous=sqlite_synchronous)
            # One connection: SQLite serialises writers anyway, and a single connection avoids
            # lock upgrades between our own connections.
            # transaction() always commits or rolls back, so the pool's reset is a wasted trip.
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=30, pool_reset_on_return=None)
            # Used from the event loop's thread too, while the pool has lent it out and nothing
            # is queued to its own thread (store.direct.run_transaction).
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(translate_url(url), **kwargs)
        if self.dialect == "sqlite":
            self._configure_sqlite(sqlite_synchronous)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def _configure_sqlite(self, synchronous: str) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Take transactions into our own hands so that every one is BEGIN IMMEDIATE:
            # writers queue on the lock (busy_timeout) instead of failing on upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cursor.execute(f"PRAGMA busy_timeout={sqlite_driver.BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE", execution_options=_PIPELINED)

    @contextlib.asynccontextmanager
    async def transaction(self, *, inline: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success; runs ``on_commit`` hooks after.

        With ``inline``, on SQLite, the transaction runs on the event loop's thread once it
        holds the write lock (``store.sqlite_driver``, ``INLINE``): for a hot transaction of a
        few short statements, which then neither crosses threads nor gives way to the loop.
        """
        async with self.connection() as conn:
            if inline and not self.is_postgres:
                await conn.execution_options(**_INLINE)
            conn.info.pop(_ON_COMMIT, None)
            async with conn.begin():
                yield conn
            hooks = conn.info.pop(_ON_COMMIT, [])
        for hook in hooks:
            hook()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose driver failures surface as ``StoreUnavailable``."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (exc.OperationalError, exc.InterfaceError, OSError, TimeoutError) as error:
            raise StoreUnavailable(f"the store is unavailable: {_describe(error)}") from error
        except exc.IntegrityError as error:
            raise StoreRejected(_describe(error), conflict=True) from error
        except exc.DataError as error:
            raise StoreRejected(_describe(error), conflict=False) from error
        except exc.DBAPIError as error:
            if error.connection_invalidated:
                raise StoreUnavailable("the store connection was lost") from error
            raise

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    async def start_checkpoints(self) -> None:
        """On a SQLite file, copy the write-ahead log back on a thread of its own from now
        on (:mod:`interlink.store.checkpoint`), and leave commits to checkpoint only if it
        falls far behind; ``dispose`` stops it. Elsewhere it does nothing."""
        if self._checkpointer is None:
            return
        self._checkpointer.start()
        if self._autocheckpoint != BACKSTOP_PAGES:
            self._autocheckpoint = BACKSTOP_PAGES  # connections opened from now on
            async with self.connection() as conn:  # and the pool's one open already
                await conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._autocheckpoint = 1000  # any connection opened after this checkpoints itself
        await self.engine.dispose()
