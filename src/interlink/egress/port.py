"""The egress port: what callers hand to an HTTP egress and what they get back.

`Egress` is the protocol services depend on. `EgressClient` (aiohttp, in
`interlink.egress.client`) is the real adapter; `InMemoryEgress` (in
`interlink.egress.memory`) answers from a handler and records every request, for tests.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDictProxy
from yarl import URL

from interlink.egress.ratelimit import Limit
from interlink.egress.retry import RetryPolicy
from interlink.egress.tls import ClientCertificate

__all__ = [
    "Body",
    "Egress",
    "EgressResponse",
    "EgressStream",
    "RequestPolicy",
    "SSLOption",
    "Timeouts",
]

Body = bytes | AsyncIterable[bytes] | None
"""A request body: bytes (replayable, so retryable) or an async stream of chunks."""

SSLOption = ssl.SSLContext | ClientCertificate | None
"""An SSL context, a client certificate for mutual TLS, or None for the system trust store."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts of one call, in seconds (None: unbounded).

    Args:
        connect: establishing the TCP connection and the TLS handshake.
        read: the longest silence while waiting for response bytes.
        total: the whole call, including waiting for a pooled connection, DNS, sending
            and reading the body (for `Egress.stream`, until the stream is closed).
    """

    connect: float | None = 10.0
    read: float | None = 30.0
    total: float | None = 60.0


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """Resilience applied to one call.

    Args:
        retry: retry policy (None: one attempt).
        circuit_breaker: consult and feed the client's breaker for the destination host
            (when the client has a `BreakerRegistry`).
        rate_limit_key: take a token from the client's rate limiter under this key before
            each attempt (when the client has a `RateLimiter`).
        rate_limit: the bucket shape for `rate_limit_key` (default: the limiter's).
        max_rate_limit_wait: longest acceptable limiter wait; beyond it `RateLimited`.
        observe_rate_limit_headers: feed the provider's rate-limit headers back into the
            limiter after each response.
    """

    retry: RetryPolicy | None = None
    circuit_breaker: bool = True
    rate_limit_key: str | None = None
    rate_limit: Limit | None = None
    max_rate_limit_wait: float | None = None
    observe_rate_limit_headers: bool = True


@dataclass(slots=True)
class EgressResponse:
    """A complete response.

    Attributes:
        status: HTTP status (3xx included: redirects are never followed).
        headers: response headers, repeated names preserved, case-insensitive.
        body: the body, decompressed; at most `max_body` bytes when a cap was asked for.
        elapsed: seconds for the whole call, every attempt and retry wait included.
        attempts: attempts made (1 without retries).
        truncated: the body was longer than the cap.
    """

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    elapsed: float = 0.0
    attempts: int = 1
    truncated: bool = False

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded (undecodable bytes replaced)."""
        return self.body.decode(encoding, errors="replace")


class EgressStream:
    """A response whose body is read as it arrives (see `Egress.stream`).

    Args:
        status: HTTP status.
        headers: response headers, repeated names preserved.
        chunks: the body, chunk by chunk as it arrives.
        release: frees the connection behind the stream.

    Attributes:
        elapsed: seconds until the headers arrived, retries included.
        attempts: attempts made.
        raw_headers: the headers as received (names as sent), when the client kept them.
    """

    def __init__(
        self,
        status: int,
        headers: CIMultiDictProxy[str],
        chunks: AsyncIterator[bytes],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self.status = status
        self.headers = headers
        self.elapsed = 0.0
        self.attempts = 1
        self.raw_headers: list[tuple[bytes, bytes]] | None = None
        self._chunks = chunks
        self._release = release

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body chunks as they arrive; raises `EgressError` if the body breaks off."""
        return self._chunks

    async def read(self) -> bytes:
        """Read the whole remaining body."""
        return b"".join([chunk async for chunk in self._chunks])

    async def aclose(self) -> None:
        """Release the connection (closed if the body was not read to the end)."""
        await self._release()


class Egress(Protocol):
    """Port for outbound HTTP; see `EgressClient` for the full description of each call."""

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        timeouts: Timeouts | None = None,
        ssl_context: SSLOption = None,
        policy: RequestPolicy | None = None,
        max_body: int | None = None,
    ) -> EgressResponse:
        """Send a request and read the whole response."""
        ...

    def stream(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        timeouts: Timeouts | None = None,
        ssl_context: SSLOption = None,
        policy: RequestPolicy | None = None,
    ) -> AbstractAsyncContextManager[EgressStream]:
        """Send a request; the context yields the response before its body is read."""
        ...

    async def validate_url(self, url: str | URL) -> None:
        """Check a URL when it is configured (SSRF guard, scheme, resolution)."""
        ...
