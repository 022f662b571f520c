"""Throw-away PostgreSQL databases for tests and benchmarks, on a server Interlink can reach.

    with scratch_database("postgresql://postgres@127.0.0.1:5432/test") as url:
        ...  # url names a new, empty database; it is dropped afterwards

The functions are synchronous and run their own event loop on a helper thread, so they work
from fixtures and scripts alike, inside a running event loop or not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import uuid
from collections.abc import Iterator

import asyncpg

__all__ = ["create_database", "drop_database", "scratch_database"]


def _server_sql(server_url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _database_url(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def create_database(server_url: str, prefix: str = "il_scratch") -> str:
    """Create an empty database on the server of ``server_url``; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _server_sql(server_url, f'CREATE DATABASE "{name}"')
    return _database_url(server_url, name)


def drop_database(database_url: str) -> None:
    """Drop the database ``database_url`` names, closing its connections first."""
    name = database_url.rsplit("/", 1)[1]
    server_url = _database_url(database_url, "postgres")
    _server_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "il_scratch") -> Iterator[str]:
    """A new, empty database for the duration of the block."""
    url = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop_database(url)
