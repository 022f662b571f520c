"""`Http1Pool`: kept-alive HTTP/1.1 connections per origin, behind the SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from yarl import URL

from interlink.egress.errors import (
    ConnectionFailed,
    ConnectionRefused,
    ConnectTimeout,
    DNSError,
    EgressError,
    TLSError,
    TotalTimeout,
)
from interlink.egress.http1.connection import Connection, Exchange, Key, ResponseBody, Stale
from interlink.egress.http1.head import request_head
from interlink.egress.port import Body as RequestBody
from interlink.egress.port import EgressStream, Timeouts
from interlink.egress.ssrf import GuardedResolver

__all__ = ["Http1Pool"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class Http1Pool:
    """Keep-alive HTTP/1.1 connections for `EgressClient.stream`.

    Args:
        resolver: resolves names and judges their addresses (the SSRF guard).
        limit: most open connections in all (0: no bound).
        keepalive_timeout: seconds an idle connection is kept.
        dns_cache_ttl: seconds a judged DNS answer is reused.
        user_agent: ``User-Agent`` sent unless the caller sets one.
    """

    def __init__(
        self,
        resolver: GuardedResolver,
        *,
        limit: int = 100,
        keepalive_timeout: float = 15.0,
        dns_cache_ttl: float = 10.0,
        user_agent: str = "interlink-egress",
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.resolver = resolver
        self.limit = limit
        self.keepalive_timeout = keepalive_timeout
        self.dns_cache_ttl = dns_cache_ttl
        self.user_agent = user_agent
        self._idle: dict[Key, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._default_tls: ssl.SSLContext | None = None
        self._closed = False

    async def open(
        self,
        method: str,
        target: URL,
        headers: Mapping[str, str] | None,
        body: RequestBody,
        timeouts: Timeouts,
        tls: ssl.SSLContext | bool,
    ) -> EgressStream:
        """Send one request; the stream's ``aclose`` gives the connection back."""
        url = str(target)
        deadline = None if timeouts.total is None else self.loop.time() + timeouts.total
        host = target.raw_host or ""
        port = target.port or (443 if target.scheme == "https" else 80)
        context = self._context(tls) if target.scheme == "https" else None
        key: Key = (host, port, context)
        head = request_head(method, target, host, port, headers, body, self.user_agent)
        replayable = method in _IDEMPOTENT and isinstance(body, bytes | None)
        while True:
            # An idle connection without a coroutine's cost, the usual case under load.
            connection = self._take_idle(key)
            if connection is None:
                connection = await self._acquire(key, url, timeouts, deadline)
            try:
                exchange = await connection.send(url, head, body, method, timeouts, deadline)
            except Stale as stale:
                connection.close()
                if replayable or not stale.sent:
                    continue
                raise ConnectionFailed(
                    f"{url}: the kept-alive connection was closed by the server"
                ) from None
            except BaseException:
                connection.close()
                raise
            break
        assert exchange.headers is not None
        stream = _PooledStream(
            exchange.status,
            exchange.headers,
            ResponseBody(connection, exchange),
            _releaser(connection, exchange),
        )
        stream.raw_headers = exchange.raw_headers
        return stream

    async def close(self) -> None:
        """Close every connection; waiting callers fail."""
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionFailed("the HTTP client is closed"))
        self._waiters.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # connections

    async def _acquire(
        self, key: Key, url: str, timeouts: Timeouts, deadline: float | None
    ) -> Connection:
        connection = self._take_idle(key)
        if connection is not None:
            return connection
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    if self._closed:
                        raise ConnectionFailed("the HTTP client is closed")
                    if self._has_room():
                        break
                    waiter = self.loop.create_future()
                    self._waiters.append(waiter)
                    try:
                        await waiter
                    finally:
                        if waiter in self._waiters:
                            self._waiters.remove(waiter)
                    connection = self._take_idle(key)
                    if connection is not None:
                        return connection
                self._connecting += 1  # the slot is taken while the connection is made
                try:
                    return await self._connect(key, url, timeouts)
                finally:
                    self._connecting -= 1
        except TimeoutError as error:
            if deadline is not None and self.loop.time() >= deadline:
                raise TotalTimeout(f"total timeout for {url}") from error
            raise

    def _take_idle(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        now = self.loop.time()
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if transport is None or transport.is_closing():
                continue
            if now - connection.idle_since > self.keepalive_timeout:
                connection.close()
                continue
            return connection
        return None

    def _has_room(self) -> bool:
        """Whether a new connection may be opened, closing an idle one elsewhere if need be."""
        if not self.limit or len(self._open) + self._connecting < self.limit:
            return True
        for connections in self._idle.values():
            if connections:  # the longest idle connection to another origin makes way
                connections[0].close()
                return True
        return False

    async def _connect(self, key: Key, url: str, timeouts: Timeouts) -> Connection:
        host, port, context = key
        addresses = [host] if _is_address(host) else await self._resolve(host, port, url)
        error: EgressError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(timeouts.connect):
                    _, connection = await self.loop.create_connection(
                        lambda: Connection(self, key),
                        address,
                        port,
                        ssl=context,
                        server_hostname=host if context is not None else None,
                    )
            except TimeoutError:
                error = ConnectTimeout(f"connect timeout to {url}")
                continue
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise TLSError(f"TLS failure with {url}: {exc}") from exc
            except (ConnectionResetError, BrokenPipeError) as exc:
                if context is None:
                    error = ConnectionFailed(f"cannot connect to {url}: {exc}")
                    continue
                # A TCP connect is refused, never reset: a reset during the TLS handshake is
                # the peer aborting it, typically over our client certificate.
                raise TLSError(f"TLS handshake aborted by the peer: {url}: {exc}") from exc
            except ConnectionRefusedError as exc:
                error = ConnectionRefused(f"connection refused by {url}: {exc}")
                continue
            except OSError as exc:
                error = ConnectionFailed(f"cannot connect to {url}: {exc}")
                continue
            self._open.add(connection)
            return connection
        assert error is not None
        raise error

    async def _resolve(self, host: str, port: int, url: str) -> list[str]:
        cached = self._dns.get((host, port))
        now = self.loop.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            results = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        except EgressError:
            raise
        except OSError as exc:
            raise DNSError(f"cannot resolve {url}: {exc}") from exc
        addresses = [result["host"] for result in results]
        if not addresses:
            raise DNSError(f"cannot resolve {url}: no address")
        self._dns[(host, port)] = (now + self.dns_cache_ttl, addresses)
        return addresses

    def _context(self, tls: ssl.SSLContext | bool) -> ssl.SSLContext:
        if isinstance(tls, ssl.SSLContext):
            return tls
        if self._default_tls is None:
            self._default_tls = ssl.create_default_context()
        return self._default_tls

    def _idle_again(self, connection: Connection) -> None:
        connection.idle_since = self.loop.time()
        self._idle.setdefault(connection.key, []).append(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.keepalive_timeout, self._sweep)
        self._wake_one()

    def _forget(self, connection: Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        self._sweeper = None
        oldest = self.loop.time() - self.keepalive_timeout
        remaining = False
        for connections in self._idle.values():
            for connection in [c for c in connections if c.idle_since <= oldest]:
                connection.close()  # which takes it out of ``connections``
            remaining = remaining or bool(connections)
        if remaining:
            self._sweeper = self.loop.call_later(self.keepalive_timeout / 2, self._sweep)


class _PooledStream(EgressStream):
    """A stream of the pool: a small answer has often arrived whole with its head, and is then
    read without iterating over it."""

    async def read(self) -> bytes:
        chunks = self.iter_chunks()
        assert isinstance(chunks, ResponseBody)
        rest = chunks.rest_if_arrived()
        return rest if rest is not None else await super().read()


def _releaser(connection: Connection, exchange: Exchange) -> Callable[[], Awaitable[None]]:
    async def release() -> None:
        connection.release(exchange)

    return release


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
