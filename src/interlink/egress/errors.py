"""Interlink's egress error tree.

Every failure of an outbound call leaves the egress layer as one of these, never as an
aiohttp or socket exception. aiohttp's exceptions are translated once, at the edge, by
`translate_aiohttp_error` (called from `interlink.egress.client`).

```
EgressError                      retryable  error_class
├── InvalidURL                   no         invalid_url
├── InvalidRequest               no         invalid_request
├── BlockedDestination           no         blocked_destination
├── EgressTimeout                yes        timeout
│   ├── ConnectTimeout
│   ├── ReadTimeout
│   └── TotalTimeout
├── DNSError                     yes        dns
├── TLSError                     no         tls
├── ConnectionFailed             yes        connection
│   └── ConnectionRefused        yes        connection_refused
├── CircuitOpen                  yes        circuit_open   (carries host, retry_after)
└── RateLimited                  yes        rate_limited   (carries key, retry_after)
```

`retryable` answers "may a later attempt of the same request succeed?". Whether a request
is *safe* to repeat (idempotency) is the retry policy's question, not the error's.
`error_class` is the stable string written to attempt logs and metrics.
"""

from __future__ import annotations

import asyncio
import errno
import ssl

import aiohttp

__all__ = [
    "BlockedDestination",
    "CircuitOpen",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionRefused",
    "DNSError",
    "EgressError",
    "EgressTimeout",
    "InvalidRequest",
    "InvalidURL",
    "RateLimited",
    "ReadTimeout",
    "TLSError",
    "TotalTimeout",
    "translate_aiohttp_error",
]


class EgressError(Exception):
    """Base of every error raised by the egress layer.

    Attributes:
        retryable: whether a later attempt of the same request may succeed.
        error_class: stable short name for attempt logs (`timeout`, `dns`, ...).
        attempts: how many attempts were made before this error was raised (set by
            `EgressClient`; 1 when no retry policy applied).
    """

    retryable: bool = False
    error_class: str = "egress"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = 1


class InvalidURL(EgressError):
    """The URL cannot be used for an outbound call (scheme, host, userinfo, https rule)."""

    error_class = "invalid_url"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid URL {url!r}: {reason}")
        self.url = url
        self.reason = reason


class InvalidRequest(EgressError):
    """The request cannot be written as HTTP/1.1 (a header name that is not a token, a value
    with CR, LF or NUL): refused before anything is sent."""

    error_class = "invalid_request"


class BlockedDestination(EgressError):
    """The SSRF guard refused the destination address.

    Attributes:
        address: the refused IP address, as the socket would have seen it.
        network: the refused range in CIDR notation (e.g. ``127.0.0.0/8``).
        label: what the range is (``loopback``, ``private``, ``link-local``, ...).
        host: the host name that resolved to `address`, when there was one.
    """

    error_class = "blocked_destination"

    def __init__(self, address: str, network: str, label: str, host: str | None = None) -> None:
        origin = f"{host} resolved to {address}, which" if host and host != address else address
        super().__init__(
            f"destination refused: {origin} is in {network} ({label}); "
            "outbound calls to it are refused unless the egress allow-list admits it"
        )
        self.address = address
        self.network = network
        self.label = label
        self.host = host


class EgressTimeout(EgressError):
    """A timeout: connect, read (between bytes) or the whole call."""

    retryable = True
    error_class = "timeout"


class ConnectTimeout(EgressTimeout):
    """The TCP (and TLS) connection was not established in time."""


class ReadTimeout(EgressTimeout):
    """The peer sent nothing for longer than the read timeout."""


class TotalTimeout(EgressTimeout):
    """The whole call (connect, send, read the body) took longer than allowed."""


class DNSError(EgressError):
    """The host name could not be resolved."""

    retryable = True
    error_class = "dns"


class TLSError(EgressError):
    """TLS failed: certificate not trusted, name mismatch, client certificate refused."""

    error_class = "tls"


class ConnectionFailed(EgressError):
    """The connection failed or broke (reset, closed early, malformed response)."""

    retryable = True
    error_class = "connection"


class ConnectionRefused(ConnectionFailed):
    """Nothing listens at the destination port."""

    error_class = "connection_refused"


class CircuitOpen(EgressError):
    """The host's circuit breaker is open: the call failed fast without touching the network.

    Attributes:
        host: the breaker's host key (``host`` or ``host:port``).
        retry_after: seconds until the breaker lets a probe call through (0 when it is
            half-open and all probe slots are taken).
    """

    retryable = True
    error_class = "circuit_open"

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(f"circuit open for {host}; next probe in {retry_after:.1f}s")
        self.host = host
        self.retry_after = retry_after


class RateLimited(EgressError):
    """The client-side rate limiter would have had to wait longer than allowed.

    Attributes:
        key: the limiter key (e.g. an endpoint or connection id).
        retry_after: seconds after which the request would be admitted.
    """

    retryable = True
    error_class = "rate_limited"

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(f"rate limit for {key!r}: next slot in {retry_after:.2f}s")
        self.key = key
        self.retry_after = retry_after


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; bound the walk anyway
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate_aiohttp_error(exc: BaseException, url: str) -> EgressError:
    """Turn an aiohttp (or asyncio timeout) exception into Interlink's tree.

    This is the only place aiohttp exceptions are looked at. Callers write
    ``raise translate_aiohttp_error(exc, url) from exc``. An `EgressError` passes through
    unchanged (the SSRF guard raises from inside aiohttp's resolver call).
    """
    if isinstance(exc, EgressError):
        return exc
    detail = f"{url}: {exc}" if str(exc) else f"{url}: {type(exc).__name__}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"connect timeout to {detail}")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ReadTimeout(f"read timeout from {detail}")
    if isinstance(exc, asyncio.TimeoutError):
        return TotalTimeout(f"total timeout for {url}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return DNSError(f"cannot resolve {detail}")
    if isinstance(exc, aiohttp.ClientSSLError) or _caused_by_tls(exc):
        return TLSError(f"TLS failure with {detail}")
    if (
        isinstance(exc, aiohttp.ClientConnectorError)
        and url.startswith("https:")
        and isinstance(exc.os_error, ConnectionResetError | BrokenPipeError)
    ):
        # A TCP connect is refused, never reset: a reset inside the connector is the peer
        # aborting the TLS handshake, typically because it refused our client certificate.
        return TLSError(f"TLS handshake aborted by the peer: {detail}")
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return ConnectionRefused(f"connection refused by {detail}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectionFailed(f"cannot connect to {detail}")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURL(url, str(exc) or "rejected by the HTTP client")
    return ConnectionFailed(f"connection failed with {detail}")
