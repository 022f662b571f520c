"""PostgreSQL LISTEN on a connection of its own, reconnecting until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

__all__ = ["listen"]

log = structlog.get_logger("interlink.notify")


async def listen(
    url: str, channel: str, on_notify: Callable[[], None], stop: asyncio.Event, *, retry: float
) -> None:
    """Call ``on_notify`` for every NOTIFY on ``channel`` until ``stop`` is set."""
    while not stop.is_set():
        try:
            conn = await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("LISTEN connection failed", channel=channel, error=str(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=retry)
            continue
        closed = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn, closed=closed: closed.set())
            await conn.add_listener(channel, lambda *_: on_notify())
            on_notify()  # anything sent while we were not listening is picked up by a poll
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(closed.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
