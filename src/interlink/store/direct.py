"""Hot statements on SQLite without SQLAlchemy's per-statement pipeline.

Measured on the inbound writer, a statement executed through SQLAlchemy cost about 200 µs of
Python on top of what SQLite itself spent on it: cache key, execution context, parameter
construction per row, result wrapping, greenlet switches. For the few statements every received
webhook goes through, that was most of the work. :class:`DirectStatement` compiles such a
statement once, for the store's dialect, with SQLAlchemy itself (so its SQL, its parameter
order and its type processing are SQLAlchemy's own and what it writes reads back the same), and
:func:`run_transaction` runs a whole transaction of them, with the plain Python that decides
between them, at once.

Such a transaction runs on the event loop's own thread when it can take SQLite's write lock at
once. Its work is bounded, so the loop is held for about as long as SQLite works on it, and
nothing crosses between threads. On the connection's thread every statement gives up the GIL
while SQLite runs and must win it back from a busy event loop. Measured on bench/inbound's
SQLite server at 1,000 req/s (timing added to the store), group commits run there held the
connection over 15 ms 46 times in 6.5 s, up to 233 ms; the figures of the change end to end are
in docs/architecture.md.

The lock is taken briefly by the checkpoint thread (``store.checkpoint``: its FULL checkpoints
at 1,000 webhooks/s came about every 60 ms; the writer's retries added up to under 2 ms each on
average) and by other processes writing to the same file. The transaction then tries
again every millisecond, the loop serving meanwhile: SQLite's own busy handler sleeps 1, 2, 5,
10 ms and longer between its tries, so a writer waiting through it went on waiting well after
the lock was free. Only after ``LOCK_TRIES`` tries, the lock being held for longer, does it go
to the connection's thread and wait for the lock there, still without holding up the loop.

On PostgreSQL the same functions run in a transaction of asyncpg's own, on the connection
SQLAlchemy's pool lends: a statement of one row is one ``fetch``, a statement of many rows one
``executemany`` or ``fetchmany``, a single round trip either way. The function is still plain
Python: it runs in a greenlet, as SQLAlchemy runs its own synchronous core over asyncpg, and
each statement waits for its answer there while the event loop goes on. Measured on this
machine with one connection, one statement cost 183 µs of the client's CPU through SQLAlchemy
and 62 µs through asyncpg, and a transaction around it 200 µs against 137 µs (90 µs as a
plain ``BEGIN`` and ``COMMIT``, below); the inbound writer's six statements a batch were, at
250 webhooks/s (a batch per webhook), about half of the server's CPU. The figures of the
change end to end are in docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import asyncpg
from sqlalchemy import JSON, Insert, bindparam, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util.concurrency import await_, greenlet_spawn

from interlink.store.sqlite_driver import (
    LOCK_PAUSE,
    LOCK_TRIES,
    begin_without_waiting,
    inline_transaction,
    raw_connection,
    run_inline,
    run_on_thread,
    send_many_later,
)
from interlink.store.types import UTCDateTime, sqlite_utc_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.sql import Executable

    from interlink.store.database import Database

__all__ = ["DirectStatement", "DirectTransaction", "run_transaction", "write_many"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class DirectStatement:
    """A statement compiled once: its SQL, its positional parameters' names and, for those
    whose type converts them, each one's position and processor."""

    sql: str
    names: tuple[str, ...]
    processing: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DirectStatement:
        """Compile ``statement`` (whose parameters are named bind parameters) for ``dialect``."""
        # As for an executemany: an INSERT returns nothing it was not asked for (PostgreSQL
        # would otherwise return the new primary key of every row).
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ())
        processing: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(names):
            column_type = compiled.binds[name].type
            if isinstance(column_type, UTCDateTime) and dialect.name == "sqlite":
                processing.append((index, sqlite_utc_text))
            elif json_text := _sqlite_json_text(column_type, dialect):
                processing.append((index, json_text))
            elif process := column_type.dialect_impl(dialect).bind_processor(dialect):
                processing.append((index, process))
        return cls(compiled.string, names, tuple(processing))

    @classmethod
    def insert(cls, table: Any, columns: Sequence[str], dialect: Dialect) -> DirectStatement:
        """``INSERT INTO table (columns) VALUES (...)``, one parameter per column."""
        return cls.compile(table.insert().values({c: bindparam(c) for c in columns}), dialect)

    def bind(self, row: Mapping[str, Any]) -> list[Any]:
        """The positional parameters for ``row``, processed as SQLAlchemy would."""
        values = list(map(row.__getitem__, self.names))
        for index, process in self.processing:
            values[index] = process(values[index])
        return values


def _sqlite_json_text(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The store's JSON serializer itself for a JSON column on SQLite, where SQLAlchemy's own
    processing only wraps it (None written as JSON ``null``, as there); else None."""
    serializer = getattr(dialect, "_json_serializer", None)
    if dialect.name != "sqlite" or serializer is None:
        return None
    if not isinstance(column_type, JSON) or column_type.none_as_null:
        return None
    return cast(Callable[[Any], Any], serializer)


class DirectTransaction(ABC):
    """The open transaction a function run by :func:`run_transaction` writes through.

    What it returns are the driver's rows, read by position; no type converts them back
    (a JSON column comes as text on SQLite and decoded on PostgreSQL).
    """

    @abstractmethod
    def execute_many(self, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute ``statement`` once per row."""

    @abstractmethod
    def fetch(self, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Execute ``statement`` once per row and return every row they returned, in order."""

    @abstractmethod
    def notify(self, channel: str) -> None:
        """``NOTIFY channel`` at the commit, for other processes, on PostgreSQL; nothing on
        SQLite, where they poll (as ``store.database.signal_on_commit``)."""


class _SqliteTransaction(DirectTransaction):
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute_many(self, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._connection.executemany(statement.sql, [statement.bind(row) for row in rows])

    def fetch(self, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        found: list[Any] = []
        for row in rows:
            found.extend(self._connection.execute(statement.sql, statement.bind(row)).fetchall())
        return found

    def notify(self, channel: str) -> None:
        pass


class _PostgresTransaction(DirectTransaction):
    """Each call is one round trip, waited for in the greenlet the work runs in."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    def execute_many(self, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        if len(rows) == 1:
            await_(self._connection.execute(statement.sql, *statement.bind(rows[0])))
        elif rows:
            await_(self._connection.executemany(statement.sql, list(map(statement.bind, rows))))

    def fetch(self, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        if len(rows) == 1:
            return list(await_(self._connection.fetch(statement.sql, *statement.bind(rows[0]))))
        if not rows:
            return []
        return list(await_(self._connection.fetchmany(statement.sql, map(statement.bind, rows))))

    def notify(self, channel: str) -> None:
        await_(self._connection.execute(f"NOTIFY {channel}"))


def _in_transaction(
    connection: sqlite3.Connection, work: Callable[..., _T], args: tuple[Any, ...]
) -> _T:
    connection.execute("BEGIN IMMEDIATE")
    return _begun(connection, work, args)


def _begun(connection: sqlite3.Connection, work: Callable[..., _T], args: tuple[Any, ...]) -> _T:
    """``work`` and the commit of the transaction ``connection`` has begun, or the rollback."""
    try:
        result = work(_SqliteTransaction(connection), *args)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


async def run_transaction(db: Database, work: Callable[..., _T], *args: Any) -> _T:
    """Run ``work(transaction, *args)`` in a transaction of its own. On SQLite: on the event
    loop's thread once the write lock is free, tried every millisecond for a while, else in one
    trip to the connection's thread, where it waits for the lock (module docstring); on
    PostgreSQL in a greenlet, each statement a round trip. ``work`` must be plain Python and
    SQL, short enough to hold the loop for, and it may run more than once: again if the caller
    retries. Errors come out as the store's."""
    if db.is_postgres:
        return await _run_on_postgres(db, work, args)
    async with db.connection() as conn:
        raw = await conn.get_raw_connection()
        connection, trips = raw_connection(raw.dbapi_connection)
        try:
            for attempt in range(LOCK_TRIES):
                if attempt:
                    await asyncio.sleep(LOCK_PAUSE)
                async with trips:  # nothing of the connection's is running on its thread
                    if begin_without_waiting(connection):
                        return _begun(connection, work, args)
            return await run_on_thread(raw.dbapi_connection, _in_transaction, work, args)
        except sqlite3.Error as error:
            # As SQLAlchemy would raise it, so the store's error mapping applies unchanged.
            raise exc.DBAPIError.instance(None, None, error, sqlite3.Error) from error


async def _run_on_postgres(db: Database, work: Callable[..., _T], args: tuple[Any, ...]) -> _T:
    async with db.connection() as conn:
        raw = await conn.get_raw_connection()
        connection: asyncpg.Connection = raw.driver_connection
        try:
            # Plain statements: asyncpg's Transaction object cost another 60 µs of CPU a
            # transaction here (207 against 145 µs around one statement, in a loop of 3,000).
            await connection.execute("BEGIN")
            try:
                result = await greenlet_spawn(work, _PostgresTransaction(connection), *args)
            except BaseException:
                if not connection.is_closed() and connection.is_in_transaction():
                    await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
            return result
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            lost = connection.is_closed() or isinstance(error, _CONNECTION_ERRORS)
            if lost:
                raw.invalidate(error)  # the pool opens a new connection for the next caller
            # As SQLAlchemy would raise it, so the store's error mapping applies unchanged.
            raise _as_sqlalchemy_error(error, lost) from error
        finally:
            # Cancelled before its rollback could run: SQLAlchemy, which did not begin this
            # transaction, would hand the connection on still inside it.
            if not connection.is_closed() and connection.is_in_transaction():
                raw.invalidate()


# Errors after which the connection cannot be used again: it is gone, or the server is going.
_CONNECTION_ERRORS = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
)


def _as_sqlalchemy_error(error: Exception, lost: bool) -> exc.DBAPIError:
    kind: type[exc.DBAPIError]
    if lost:
        kind = exc.OperationalError
    elif isinstance(error, asyncpg.IntegrityConstraintViolationError):
        kind = exc.IntegrityError
    elif isinstance(error, asyncpg.DataError):
        kind = exc.DataError
    else:
        kind = exc.DBAPIError
    return kind(None, None, error, connection_invalidated=lost)


# Statements write_many compiled, by dialect, statement and the columns of its rows. Its
# callers pass statements built once, at import; the bound keeps a caller that does not (or a
# test suite's many engines) from growing it.
_COMPILED: dict[tuple[Any, ...], DirectStatement] = {}
_COMPILED_LIMIT = 256


async def write_many(
    conn: AsyncConnection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Execute the write ``statement`` once per row of ``rows`` in ``conn``'s transaction,
    for a caller that reads nothing back (no rows, no row count): a batch's inserts, or an
    update whose parameters are named bind parameters.

    The statement is compiled once (:class:`DirectStatement`; an ``INSERT`` names the columns
    of the first row, as SQLAlchemy would) and the rows are bound in plain Python, without
    SQLAlchemy's per-statement and per-row processing.

    On SQLite the statement is queued to the connection's thread without waiting, like a
    pipelined one (``store.database.pipelined``): its error, if any, comes out of the next
    statement that is waited for, or the commit. In an ``INLINE`` transaction
    (``Database.transaction(inline=True)``) it runs at once on the calling thread instead, and
    its error comes out of this call. Under the outbound benchmark's load SQLAlchemy's
    processing of each row's parameters was about a tenth of the server's CPU (sampled), and
    with this the server spent 283 and 300 µs per message instead of 331 and 337 (two
    alternating pairs).

    On PostgreSQL it is one ``executemany`` (or ``execute``) of asyncpg's, on the connection
    SQLAlchemy's transaction holds, once that transaction has begun on the server (SQLAlchemy
    sends its ``BEGIN`` with the transaction's first statement; before it, the statement goes
    through SQLAlchemy, which sends it). Measured on this machine with 32 attempt rows a
    statement, the client spent 12.4 µs a row this way against 23.5 through SQLAlchemy (making
    the rows and the transaction around them included).

    Elsewhere, for an empty ``rows`` and on a connection not yet in a transaction, it is
    ``conn.execute``.
    """
    if not rows:
        return
    if not conn.in_transaction():
        # Outside a transaction SQLAlchemy begins one first, which a statement sent directly
        # would miss: it would commit on its own.
        await conn.execute(statement, list(rows))
        return
    postgres = conn.dialect.name == "postgresql"
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if postgres and not driver.is_in_transaction():
        await conn.execute(statement, list(rows))  # SQLAlchemy's BEGIN goes first
        return
    key = (conn.dialect, statement, *rows[0])
    direct = _COMPILED.get(key)
    if direct is None:
        if len(_COMPILED) >= _COMPILED_LIMIT:
            _COMPILED.clear()
        if isinstance(statement, Insert):
            statement = statement.values({column: bindparam(column) for column in rows[0]})
        assert isinstance(statement, ClauseElement)
        direct = DirectStatement.compile(statement, conn.dialect)
        _COMPILED[key] = direct
    parameters = [direct.bind(row) for row in rows]
    if postgres:
        await _execute_many_on_postgres(raw, direct.sql, parameters)
    elif inline_transaction(raw.dbapi_connection):
        try:
            run_inline(raw.dbapi_connection, direct.sql, parameters)
        except sqlite3.Error as error:
            # As SQLAlchemy would raise it, so the store's error mapping applies unchanged.
            raise exc.DBAPIError.instance(None, None, error, sqlite3.Error) from error
    else:
        send_many_later(raw.dbapi_connection, direct.sql, parameters)


async def _execute_many_on_postgres(raw: Any, sql: str, parameters: list[list[Any]]) -> None:
    connection: asyncpg.Connection = raw.driver_connection
    try:
        if len(parameters) == 1:
            await connection.execute(sql, *parameters[0])
        else:
            await connection.executemany(sql, parameters)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        lost = connection.is_closed() or isinstance(error, _CONNECTION_ERRORS)
        if lost:
            raw.invalidate(error)  # the pool opens a new connection for the next caller
        # As SQLAlchemy would raise it, so the store's error mapping applies unchanged; the
        # transaction, aborted on the server, is rolled back by its owner.
        raise _as_sqlalchemy_error(error, lost) from error
