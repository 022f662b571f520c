"""One kept-alive HTTP/1.1 connection: writes requests, parses answers with httptools."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from interlink.egress.errors import ConnectionFailed, ReadTimeout, TotalTimeout
from interlink.egress.port import Body as RequestBody
from interlink.egress.port import Timeouts

if TYPE_CHECKING:
    from interlink.egress.http1.pool import Http1Pool

__all__ = ["Connection", "Exchange", "Key", "ResponseBody", "Stale"]

_PAUSE_AT = 256 << 10
_RESUME_AT = 64 << 10

Key = tuple[str, int, ssl.SSLContext | None]
"""A pool's origin: host, port and the TLS context (None for plain HTTP)."""


class Stale(Exception):
    """A kept-alive connection turned out closed before any byte of the answer arrived.

    ``sent``: whether the request had been written (then only an idempotent one is sent again).
    """

    def __init__(self, sent: bool) -> None:
        super().__init__()
        self.sent = sent


class Exchange:
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


class Connection(asyncio.Protocol):
    """One keep-alive connection: writes requests, parses answers with httptools."""

    def __init__(self, pool: Http1Pool, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.url = ""  # of the request in flight, for error messages
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
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
                exchange.fail(Stale(sent=True))
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
        headers: CIMultiDict[str] = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in exchange.raw_headers
        )
        exchange.headers = CIMultiDictProxy(headers)
        framed = "Content-Length" in headers or "Transfer-Encoding" in headers
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

    def _finish(self, exchange: Exchange) -> None:
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
        body: RequestBody,
        method: str,
        timeouts: Timeouts,
        deadline: float | None,
    ) -> Exchange:
        """Write one request and wait for the head of its answer."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise Stale(sent=False)
        self.url = url
        self.uses += 1
        self.head_only = method == "HEAD"
        exchange = self.exchange = Exchange(self.loop)
        self.last_data = self.loop.time()
        self.read_timeout = timeouts.read
        if deadline is not None:
            self._total_timer = self.loop.call_at(deadline, self._total_expired)
        if isinstance(body, bytes) and len(body) < 65536:
            transport.write(head + body)  # one write: one segment for a small request
        else:
            transport.write(head)
            if isinstance(body, bytes):
                transport.write(body)
            elif body is not None:
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

    async def next_chunk(self, exchange: Exchange) -> bytes | None:
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

    def release(self, exchange: Exchange) -> None:
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
            # A reader still holding this body's iterator gets an error, not a wait forever.
            exchange.fail(ConnectionFailed(f"{self.url}: the stream was closed"))
            self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows and settles the exchange
        self.pool._forget(self)


class ResponseBody:
    """The body of one answer as an async iterator (the stream's ``aclose`` releases it)."""

    __slots__ = ("connection", "exchange")

    def __init__(self, connection: Connection, exchange: Exchange) -> None:
        self.connection = connection
        self.exchange = exchange

    def __aiter__(self) -> ResponseBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.connection.next_chunk(self.exchange)
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    def rest_if_arrived(self) -> bytes | None:
        """What is left of the body when all of it has arrived (taken from the buffer), or None
        while more is to come or the answer failed."""
        exchange = self.exchange
        if not exchange.done or exchange.error is not None:
            return None
        body = exchange.body
        rest = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        exchange.buffered = 0
        return rest
