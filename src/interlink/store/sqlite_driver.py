"""SQLite through aiosqlite with one trip to its thread per statement.

SQLAlchemy's aiosqlite adapter makes a round trip to the connection's thread, and back through
the event loop, for each step of a statement: open a cursor, execute, fetch the rows, close. On
a busy loop every trip waits behind the callbacks already queued, so a transaction of a few
statements takes a dozen loop iterations, and with one connection shared by the whole process
that wait becomes everyone's. This dialect (``sqlite+interlink``, registered on import) keeps
aiosqlite's thread and connection but runs the whole statement in one trip: the thread opens a
plain ``sqlite3`` cursor, executes, fetches every row and closes it, and hands back rows,
description, row count and last row id together. Results are small (the store pages its
queries), so fetching eagerly is what the adapter did already.

A transaction begun on a connection with the ``INLINE`` execution option runs on the event
loop's own thread instead (``Database.transaction(inline=True)``), for hot transactions whose
statements are few and short: ``BEGIN IMMEDIATE`` is tried there without waiting for the write
lock (again every millisecond for a while, the loop serving meanwhile, and only then on the
connection's thread, which waits for the lock), and once the lock is held every statement, the
commit and the rollback run on the loop's thread, each where it is called. Nothing crosses
between threads: on the connection's thread every statement gave up the GIL while SQLite ran
and had to win it back from the busy event loop (``store.direct`` measures the same for its
transactions). It is safe because the pool's only connection is lent to one user at a time,
and that user's earlier work on the connection's thread was waited for (a transaction's end is
a waited trip), so the thread is idle.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DRIVER_NAME",
    "INLINE",
    "LOCK_PAUSE",
    "LOCK_TRIES",
    "PIPELINED",
    "SQLiteDialect_interlink",
    "begin_without_waiting",
    "inline_transaction",
    "raw_connection",
    "run_inline",
    "run_on_thread",
    "send_many_later",
]

DRIVER_NAME = "interlink"
# How long a statement waits for another connection's write lock before failing.
BUSY_TIMEOUT_MS = 10_000
# The execution option that lets a statement go without waiting for it (see _Pipeline).
PIPELINED = "interlink_pipelined"
# The connection's execution option that runs its transactions on the loop's thread (above).
INLINE = "interlink_inline"
# Tries at the write lock on the loop's thread, a millisecond apart, before waiting on the
# connection's: SQLite's own busy handler sleeps 1, 2, 5, 10 ms and longer between its tries,
# so a writer waiting through it went on waiting well after the lock was free.
LOCK_TRIES = 50
LOCK_PAUSE = 0.001
_T = TypeVar("_T")

# What one trip brings back: description, rowcount, lastrowid, rows.
_Outcome = tuple[Any, int, int | None, list[Any] | None]


class _Pipeline:
    """A connection's statements that were sent without waiting, as its thread sees them.

    A statement executed with the ``PIPELINED`` option (a write whose result nobody reads:
    ``BEGIN IMMEDIATE``, inserts, updates whose row count is not checked) is queued to the
    connection's thread and the caller goes on at once; the thread runs it in order with the
    rest. If it fails, the error is kept here and nothing sent after it runs: the next statement
    that is waited for, or the commit, raises it instead, and the transaction is rolled back,
    so nothing of it is committed. The rollback clears it.
    """

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def _run_later(
    pipeline: _Pipeline,
    connection: sqlite3.Connection,
    operation: str,
    parameters: Any,
    many: bool,
) -> None:
    """Runs in the connection's thread: a pipelined statement; keeps its error, if any."""
    if pipeline.error is not None:
        return
    try:
        _run(pipeline, connection, operation, parameters, many)
    except BaseException as error:
        pipeline.error = error


async def _nothing() -> None:
    return None


def _finish(pipeline: _Pipeline, connection: sqlite3.Connection, commit: bool) -> None:
    """Runs in the connection's thread: commit, or roll back when asked to, when a pipelined
    statement failed (its error is raised) or when the commit itself fails. The connection is
    out of its transaction afterwards, whatever happened."""
    error, pipeline.error = pipeline.error, None
    if commit and error is None:
        try:
            connection.commit()
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise
        return
    connection.rollback()
    if error is not None and commit:
        raise error


def _run(
    pipeline: _Pipeline,
    connection: sqlite3.Connection,
    operation: str,
    parameters: Any,
    many: bool,
) -> _Outcome:
    """Runs in the connection's thread: the whole statement, then the cursor is closed."""
    pipeline.check()
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _locked_out(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, with or without an extended code."""
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def begin_without_waiting(connection: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` if the write lock is free at once; False (nothing begun) if not."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if _locked_out(error):
            return False
        raise
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


def run_inline(adapter: Any, operation: str, seq_of_parameters: list[Any]) -> None:
    """Execute ``operation`` once per parameter set on the calling thread, in the ``INLINE``
    transaction of the DBAPI connection ``adapter``; errors come out as ``sqlite3``'s."""
    _run(adapter._pipeline, adapter._connection._conn, operation, seq_of_parameters, True)


def inline_transaction(adapter: Any) -> bool:
    """Whether the DBAPI connection ``adapter`` is in a transaction begun ``INLINE``."""
    return bool(getattr(adapter, "_inline", False))


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that never holds an aiosqlite cursor: each statement is one trip."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: Any) -> None:
        # Deliberately not the base initialiser: it would open an aiosqlite cursor (a trip).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # rows are fetched all at once; there is nothing to size

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._trip(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._trip(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def execute_later(self, operation: Any, parameters: Any, *, many: bool) -> None:
        """Send the statement to the connection's thread without waiting (``PIPELINED``)."""
        _queue_later(self._adapt_connection, operation, parameters, many)
        # SQLAlchemy insists that an execution awaits something; this returns at once, without
        # giving way to the event loop.
        await_(_nothing())
        self._description, self._rowcount, self._lastrowid = None, -1, None
        self._rows = collections.deque()

    def execute_inline(self, operation: Any, parameters: Any, *, many: bool) -> None:
        """Run the statement on the calling thread (``INLINE``); ``BEGIN`` starts the inline
        transaction (the module docstring)."""
        adapter = cast("_OneTripConnection", self._adapt_connection)
        if not adapter._inline:
            if operation == "BEGIN IMMEDIATE":
                self._begin_inline(adapter)
            elif many:  # outside a transaction (none begun yet): as any other statement
                self.executemany(operation, parameters)
            else:
                self.execute(operation, parameters)
            return
        try:
            outcome = _run(adapter._pipeline, self._connection._conn, operation, parameters, many)
        except Exception as error:
            adapter._handle_exception(error)
        await_(_nothing())  # as in execute_later: an execution must await, and this returns
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows) if rows else collections.deque()

    def _begin_inline(self, adapter: _OneTripConnection) -> None:
        connection = self._connection
        if not connection._running or not connection._connection:
            adapter._handle_exception(ValueError("Connection closed"))
        try:
            for attempt in range(LOCK_TRIES):
                if attempt:
                    await_(asyncio.sleep(LOCK_PAUSE))
                if begin_without_waiting(connection._conn):
                    break
            else:  # held for longer: wait for it on the connection's thread
                await_(self._trip("BEGIN IMMEDIATE", None, many=False))
        except Exception as error:
            adapter._handle_exception(error)
        adapter._inline = True
        self._description, self._rowcount, self._lastrowid = None, -1, None
        self._rows = collections.deque()

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection = self._connection
        pipeline = cast("_OneTripConnection", self._adapt_connection)._pipeline
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(  # one trip to the thread
                _run, pipeline, connection._conn, operation, parameters, many
            )
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows) if rows else collections.deque()

    async def _async_soft_close(self) -> None:
        return None  # nothing is left open between trips


async def run_on_thread(adapter: Any, function: Callable[..., _T], *args: Any) -> _T:
    """Run ``function(sqlite3_connection, *args)`` on the thread of the DBAPI connection
    ``adapter`` (a pool connection's ``dbapi_connection``), in one trip, between statements."""
    connection = adapter._connection
    async with adapter._execute_mutex:
        result: _T = await connection._execute(function, connection._conn, *args)
    return result


def send_many_later(adapter: Any, operation: str, seq_of_parameters: list[Any]) -> None:
    """Queue ``operation`` once per parameter set to the thread of the DBAPI connection
    ``adapter`` without waiting, as a ``PIPELINED`` statement is: in order with the rest, its
    error kept for the next statement that is waited for, or the commit. The caller's
    transaction must have begun (``BEGIN IMMEDIATE`` is itself pipelined at its start)."""
    _queue_later(adapter, operation, seq_of_parameters, True)


def _queue_later(adapter: Any, operation: str, parameters: Any, many: bool) -> None:
    """Put a pipelined statement on the queue of ``adapter``'s thread (:func:`_run_later`)."""
    connection = adapter._connection
    if not connection._running or not connection._connection:
        adapter._handle_exception(ValueError("Connection closed"))
    pipeline = cast("_OneTripConnection", adapter)._pipeline
    work = functools.partial(_run_later, pipeline, connection._conn, operation, parameters, many)
    connection._tx.put_nowait((None, work))  # aiosqlite sends no result back for None


def raw_connection(adapter: Any) -> tuple[sqlite3.Connection, Any]:
    """The ``sqlite3`` connection behind the DBAPI connection ``adapter`` and the lock that
    keeps trips to its thread apart, for a caller that uses it from the event loop's thread
    (the pool's only connection is opened with ``check_same_thread=False`` for that)."""
    return adapter._connection._conn, adapter._execute_mutex


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_inline", "_pipeline")
    _cursor_cls = _OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._pipeline = _Pipeline()
        self._inline = False  # in a transaction begun INLINE: it ends on the calling thread

    def commit(self) -> None:
        self._finish(commit=True)

    def rollback(self) -> None:
        self._finish(commit=False)

    def _finish(self, *, commit: bool) -> None:
        connection = self._connection
        if not connection._connection:
            return
        inline, self._inline = self._inline, False
        try:
            if inline:
                _finish(self._pipeline, connection._conn, commit)
            else:
                await_(connection._execute(_finish, self._pipeline, connection._conn, commit))
        except Exception as error:
            self._handle_exception(error)


class _OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy does: never block interpreter exit
        return _OneTripConnection(self, await_(connection))


class SQLiteDialect_interlink(SQLiteDialect_aiosqlite):
    driver = DRIVER_NAME
    supports_statement_cache = True

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        options = context.execution_options if context is not None else EMPTY_DICT
        if options.get(INLINE):
            cursor.execute_inline(statement, parameters, many=False)
        elif options.get(PIPELINED):
            cursor.execute_later(statement, parameters, many=False)
        else:
            cursor.execute(statement, parameters)

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        options = context.execution_options if context is not None else EMPTY_DICT
        if options.get(INLINE):
            cursor.execute_inline(statement, parameters, many=True)
        elif options.get(PIPELINED):
            cursor.execute_later(statement, parameters, many=True)
        else:
            cursor.executemany(statement, parameters)

    @classmethod
    def import_dbapi(cls) -> _OneTripDBAPI:
        return _OneTripDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register(f"sqlite.{DRIVER_NAME}", __name__, "SQLiteDialect_interlink")
