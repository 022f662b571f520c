"""A lean HTTP/1.1 client for streamed calls: keep-alive pools over asyncio protocols.

`EgressClient.stream` (the proxy's path) sends through this pool instead of aiohttp. A proxied
call needs a small part of a general client: the body passes through as sent (no
decompression), redirects are never followed, cookies are never kept. Doing only that, with
the response parsed by ``httptools`` (the parser uvicorn uses), costs about a third of the CPU
of an aiohttp request, and the proxy's throughput is bounded by its CPU.

What it does do:

- **Pools** per origin (scheme, host, port, TLS context), most recent connection first, idle
  ones closed after ``keepalive_timeout``; at most ``limit`` open connections in all (0: no
  bound), a caller beyond it waits its turn (within its total timeout).
- **The SSRF guard**: names are resolved through the `GuardedResolver` (a refused address
  fails the call before any socket is opened), answers are kept ``dns_cache_ttl`` seconds.
- **Timeouts** as `Timeouts` says: ``connect`` covers TCP and the TLS handshake, ``read`` is
  the longest silence while a response is awaited, ``total`` runs until the stream is closed.
- **A stale keep-alive connection** (closed by the server while idle, seen only when the next
  request is sent) is replaced by a new one and the request sent again, when it is
  idempotent and nothing of the answer had arrived.
- **Framing**: ``Content-Length`` for bytes, chunked transfer for a stream of chunks;
  responses by length, chunked or until close; ``HEAD`` and 1xx answers; back-pressure (the
  socket is not read while 256 KiB of the body wait for the reader).
- **Header injection** is refused: a name that is not a token or a value with CR, LF or NUL
  raises `InvalidRequest` before anything is sent.

Every failure leaves as an `EgressError`, like aiohttp's do through `translate_aiohttp_error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterable, Mapping
from typing import Any, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from interlink.egress.errors import (
    ConnectionFailed,
    ConnectionRefused,
    ConnectTimeout,
    DNSError,
    EgressError,
    InvalidRequest,
    ReadTimeout,
    TLSError,
    TotalTimeout,
)
from interlink.egress.port import Body, EgressStream, Timeouts
from interlink.egress.ssrf import GuardedResolver

__all__ = ["Http1Pool"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\0]")
# Framing is the pool's own business: a caller's copy could smuggle a second request.
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})
_PAUSE_AT = 256 << 10
_RESUME_AT = 64 << 10

_Key = tuple[str, int, ssl.SSLContext | None]


class _Stale(Exception):
    """A kept-alive connection turned out closed before any byte of the answer arrived.

    ``sent``: whether the request had been written (then only an idempotent one is sent again).
    """

    def __init__(self, sent: bool) -> None:
        super().__init__()
        self.sent = sent


class _Exchange:
    """One request's answer as it arrives: its head, then its body chunk by chunk."""

    __slots__ = (
        "body",
        "buffered",
        "done",
        "error",
        "head",
        "headers",
        "raw_headers",
        "received",
        "status",
        "until_close",
        "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.head: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers: CIMultiDictProxy[str] | None = None
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.done = False
        self.received = False
        self.until_close = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def fail(self, error: BaseException) -> None:
        if self.done or self.error is not None:
            return
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: a failure nobody awaits is not logged
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes requests, parses answers with httptools."""

    def __init__(self, pool: Http1Pool, key: _Key, url: str) -> None:
        self.pool = pool
        self.key = key
        self.url = url
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.reusable = True
        self.uses = 0
        self.idle_since = 0.0
        self.last_data = 0.0
        self.paused = False
        self.head_only = False
        self.read_timeout: float | None = None
        self._read_timer: asyncio.TimerHandle | None = None
        self._total_timer: asyncio.TimerHandle | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        self.last_data = self.loop.time()
        exchange.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            exchange.fail(ConnectionFailed(f"{self.url}: the server switched protocols"))
            self.close()
        except httptools.HttpParserError as error:
            exchange.fail(ConnectionFailed(f"invalid HTTP response from {self.url}: {error}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.transport = None
        self._cancel_timers()
        exchange = self.exchange
        if exchange is not None and not exchange.done:
            if exchange.until_close and exchange.error is None and exc is None:
                self._finish(exchange)
            elif not exchange.received and self.uses > 1:
                exchange.fail(_Stale(sent=True))
            else:
                reason = f": {exc}" if exc else ""
                exchange.fail(
                    ConnectionFailed(f"{self.url}: connection closed before the answer ended"
                                     f"{reason}")
                )  # fmt: skip
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionFailed(f"{self.url}: connection lost"))
        self.pool._forget(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.raw_headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer (100 Continue, 103 Early Hints): the final one follows
        exchange.status = status
        headers: CIMultiDict[str] = CIMultiDict()
        framed = False
        for name, value in exchange.raw_headers:
            text = name.decode("latin-1")
            headers.add(text, value.decode("latin-1"))
            lowered = name.lower()
            framed = framed or lowered == b"content-length" or lowered == b"transfer-encoding"
        exchange.headers = CIMultiDictProxy(headers)
        if not self.parser.should_keep_alive():
            self.reusable = False
        if self.head_only:
            # No body follows an answer to HEAD, whatever its headers announce; the parser
            # cannot be told so, so this connection is not used again.
            self.reusable = False
            self._finish(exchange)
        elif not framed and status not in (204, 304):
            exchange.until_close = True
            self.reusable = False
        if not exchange.head.done():
            exchange.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.done:
            return
        exchange.body.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > _PAUSE_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        exchange._wake()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.status and not exchange.done:
            self._finish(exchange)

    # requests

    def _finish(self, exchange: _Exchange) -> None:
        exchange.done = True
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        if not exchange.head.done():
            exchange.head.set_result(None)
        exchange._wake()

    async def send(
        self,
        url: str,
        head: bytes,
        body: Body,
        method: str,
        timeouts: Timeouts,
        deadline: float | None,
    ) -> _Exchange:
        """Write one request and wait for the head of its answer."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise _Stale(sent=False)
        self.url = url
        self.uses += 1
        self.head_only = method == "HEAD"
        exchange = self.exchange = _Exchange(self.loop)
        self.last_data = self.loop.time()
        self.read_timeout = timeouts.read
        if deadline is not None:
            self._total_timer = self.loop.call_at(deadline, self._total_expired)
        if isinstance(body, bytes):
            transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                transport.write(body)
        elif body is None:
            transport.write(head)
        else:
            transport.write(head)
            await self._send_chunks(body)
        self._arm_read_timer()
        await exchange.head
        return exchange

    async def _send_chunks(self, body: AsyncIterable[bytes]) -> None:
        assert self.transport is not None
        async for chunk in body:
            if self.transport is None or (self.exchange and self.exchange.error is not None):
                break
            if chunk:
                self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if self._write_paused:
                self._drain = self.loop.create_future()
                await self._drain
        if self.transport is not None:
            self.transport.write(b"0\r\n\r\n")

    def _arm_read_timer(self) -> None:
        if self.read_timeout is not None and self._read_timer is None:
            self._read_timer = self.loop.call_at(
                self.last_data + self.read_timeout, self._read_expired
            )

    def _read_expired(self) -> None:
        self._read_timer = None
        exchange = self.exchange
        if exchange is None or exchange.done or self.read_timeout is None:
            return
        silent_since = self.last_data
        if self.paused or exchange.buffered:
            silent_since = self.loop.time()  # the reader is behind, not the server
        if self.loop.time() - silent_since < self.read_timeout:
            self._read_timer = self.loop.call_at(
                silent_since + self.read_timeout, self._read_expired
            )
            return
        exchange.fail(ReadTimeout(f"read timeout from {self.url}"))
        self.close()

    def _total_expired(self) -> None:
        self._total_timer = None
        if self.exchange is not None:
            self.exchange.fail(TotalTimeout(f"total timeout for {self.url}"))
        self.close()

    def _cancel_timers(self) -> None:
        for timer in (self._read_timer, self._total_timer):
            if timer is not None:
                timer.cancel()
        self._read_timer = self._total_timer = None

    async def next_chunk(self, exchange: _Exchange) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if exchange.body:
                chunk = exchange.body.popleft()
                exchange.buffered -= len(chunk)
                if self.paused and exchange.buffered < _RESUME_AT and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                return chunk
            if exchange.error is not None:
                raise exchange.error
            if exchange.done:
                return None
            exchange.waiter = self.loop.create_future()
            self._arm_read_timer()
            await exchange.waiter

    def release(self, exchange: _Exchange) -> None:
        """The caller is done with ``exchange``: keep the connection if it can serve again.

        A second release of the same exchange does nothing: by then the connection may
        carry another caller's request.
        """
        if self.exchange is not exchange:
            return
        self.exchange = None
        self._cancel_timers()
        if (
            exchange.done
            and exchange.error is None
            and self.reusable
            and self.transport is not None
            and not self.transport.is_closing()
        ):
            if self.paused:
                self.paused = False
                self.transport.resume_reading()
            self.pool._idle_again(self)
        else:
            self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows and settles the exchange
        self.pool._forget(self)


class _Body:
    """The body of one answer as an async iterator; releases the connection at its end."""

    __slots__ = ("connection", "exchange")

    def __init__(self, connection: _Connection, exchange: _Exchange) -> None:
        self.connection = connection
        self.exchange = exchange

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.connection.next_chunk(self.exchange)
        if chunk is None:
            raise StopAsyncIteration
        return chunk


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
        self._idle: dict[_Key, list[_Connection]] = {}
        self._open: set[_Connection] = set()
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
        body: Body,
        timeouts: Timeouts,
        tls: ssl.SSLContext | bool,
    ) -> EgressStream:
        """Send one request; the stream's ``aclose`` gives the connection back."""
        url = str(target)
        deadline = None if timeouts.total is None else self.loop.time() + timeouts.total
        host = target.raw_host or ""
        port = target.port or (443 if target.scheme == "https" else 80)
        context = self._context(tls) if target.scheme == "https" else None
        key: _Key = (host, port, context)
        head = _request_head(method, target, host, port, headers, body, self.user_agent)
        replayable = method in _IDEMPOTENT and isinstance(body, bytes | None)
        while True:
            connection = await self._acquire(key, url, timeouts, deadline)
            try:
                exchange = await connection.send(url, head, body, method, timeouts, deadline)
            except _Stale as stale:
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
        stream = EgressStream(
            exchange.status,
            exchange.headers,
            _Body(connection, exchange),
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
        self, key: _Key, url: str, timeouts: Timeouts, deadline: float | None
    ) -> _Connection:
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

    def _take_idle(self, key: _Key) -> _Connection | None:
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

    async def _connect(self, key: _Key, url: str, timeouts: Timeouts) -> _Connection:
        host, port, context = key
        addresses = [host] if _is_address(host) else await self._resolve(host, port, url)
        error: EgressError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(timeouts.connect):
                    _, connection = await self.loop.create_connection(
                        lambda: _Connection(self, key, url),
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

    def _idle_again(self, connection: _Connection) -> None:
        connection.idle_since = self.loop.time()
        self._idle.setdefault(connection.key, []).append(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.keepalive_timeout, self._sweep)
        self._wake_one()

    def _forget(self, connection: _Connection) -> None:
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
                connections.remove(connection)
                connection.close()
            remaining = remaining or bool(connections)
        if remaining:
            self._sweeper = self.loop.call_later(self.keepalive_timeout / 2, self._sweep)


def _releaser(connection: _Connection, exchange: _Exchange) -> Any:
    async def release() -> None:
        connection.release(exchange)

    return release


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _request_head(
    method: str,
    target: URL,
    host: str,
    port: int,
    headers: Mapping[str, str] | None,
    body: Body,
    user_agent: str,
) -> bytes:
    if not _TOKEN.fullmatch(method):
        raise InvalidRequest(f"invalid method {method!r}")
    authority = f"[{host}]" if ":" in host else host
    if not target.is_default_port():
        authority = f"{authority}:{port}"
    lines = [f"{method} {target.raw_path_qs} HTTP/1.1\r\n"]
    seen_agent = seen_accept = False
    host_line = f"Host: {authority}\r\n"
    for name, value in (headers or {}).items():
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise InvalidRequest(f"invalid header {name!r}: names are tokens, values one line")
        lowered = name.lower()
        if lowered in _FRAMING:
            if lowered == "host":
                host_line = f"Host: {value}\r\n"
            continue
        seen_agent = seen_agent or lowered == "user-agent"
        seen_accept = seen_accept or lowered == "accept"
        lines.append(f"{name}: {value}\r\n")
    lines.insert(1, host_line)
    if not seen_agent:
        lines.append(f"User-Agent: {user_agent}\r\n")
    if not seen_accept:
        lines.append("Accept: */*\r\n")
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif body is None:
        if method in _BODY_EXPECTED:
            lines.append("Content-Length: 0\r\n")
    else:
        lines.append("Transfer-Encoding: chunked\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")  # as aiohttp sends a value outside Latin-1
