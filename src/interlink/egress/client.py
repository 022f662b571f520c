"""`EgressClient`: the one HTTP client for everything that leaves the process.

It owns one aiohttp session for whole responses (a pooled, kept-alive `TCPConnector` whose
resolver is the SSRF guard, no cookie jar shared across calls, no proxies from the
environment) and one `Http1Pool` for streamed ones, behind the same guard. Redirects are never
followed (a 3xx is returned to the caller). Each call may carry a `RequestPolicy`
(retry, circuit breaker, client-side rate limit); without one the call is a single attempt
with no extra work, which is what the webhook delivery hot path uses.

This module is the edge where aiohttp exceptions become `EgressError`s (the pool raises its own).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDictProxy
from yarl import URL

from interlink.egress.breaker import BreakerRegistry, CircuitBreaker, is_host_failure
from interlink.egress.errors import EgressError, InvalidURL, translate_aiohttp_error
from interlink.egress.http1 import Http1Pool
from interlink.egress.port import (
    Body,
    EgressResponse,
    EgressStream,
    RequestPolicy,
    SSLOption,
    Timeouts,
)
from interlink.egress.ratelimit import RateLimiter
from interlink.egress.ssrf import AddressPolicy, GuardedResolver
from interlink.egress.tls import ClientCertificate, TLSContextCache

__all__ = ["EgressClient"]

# Exceptions that may come out of aiohttp while connecting, sending or reading.
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


async def _discard(retried: EgressStream) -> None:
    await retried.aclose()


@lru_cache(maxsize=64)
def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    # sock_connect rather than connect: a wait for a free pooled connection is local
    # back-pressure, not a host failure, and must not open the host's breaker.
    return aiohttp.ClientTimeout(
        total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
    )


class EgressClient:
    """The resilient HTTP client for outbound calls.

    Create one per application instance (it holds the connection pool) and close it on
    shutdown; it may be used as an async context manager. The aiohttp session is created on
    first use, inside the running event loop.

    Args:
        address_policy: the SSRF guard (default: refuse every private and special range).
        resolver: the real DNS resolver wrapped by the guard (default: aiohttp's); the
            client closes it in `close`.
        timeouts: default timeouts of a call.
        limit: most open connections in total (0: unbounded).
        limit_per_host: most open connections per host (0: unbounded).
        keepalive_timeout: seconds an idle pooled connection is kept.
        dns_cache_ttl: seconds a (checked) DNS answer is reused.
        breakers: circuit breakers by host, used by calls whose policy asks for them.
        rate_limiter: client-side limiter, used by calls whose policy names a key.
        max_body_bytes: default cap on bodies read by `request` (None: read everything).
        drain_limit: bytes past the cap still read to keep the connection reusable; a
            longer remainder closes the connection instead.
        user_agent: the ``User-Agent`` header sent unless a call sets its own.
        tls_cache_size: client-certificate SSL contexts kept.

    Example:
        >>> policy = AddressPolicy(allow=parse_allow_list(settings.egress_allow))
        >>> async with EgressClient(address_policy=policy) as client:
        ...     response = await client.request("POST", url, headers=h, body=payload)
    """

    def __init__(
        self,
        *,
        address_policy: AddressPolicy | None = None,
        resolver: AbstractResolver | None = None,
        timeouts: Timeouts | None = None,
        limit: int = 100,
        limit_per_host: int = 0,
        keepalive_timeout: float = 15.0,
        dns_cache_ttl: int = 10,
        breakers: BreakerRegistry | None = None,
        rate_limiter: RateLimiter | None = None,
        max_body_bytes: int | None = None,
        drain_limit: int = 1 << 20,
        user_agent: str = "interlink-egress",
        tls_cache_size: int = 256,
    ) -> None:
        self.address_policy = address_policy or AddressPolicy()
        self.timeouts = timeouts or Timeouts()
        self.breakers = breakers
        self.rate_limiter = rate_limiter
        self.max_body_bytes = max_body_bytes
        self.drain_limit = drain_limit
        self._given_resolver = resolver
        self._resolver: AbstractResolver | None = None
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._dns_cache_ttl = dns_cache_ttl
        self._user_agent = user_agent
        self._tls = TLSContextCache(tls_cache_size)
        self._session: aiohttp.ClientSession | None = None
        self._guarded: GuardedResolver | None = None
        self._pool: Http1Pool | None = None

    async def __aenter__(self) -> Self:
        self._open_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._resolver = self._given_resolver or DefaultResolver()
            self._guarded = GuardedResolver(self.address_policy, self._resolver)
            connector = aiohttp.TCPConnector(
                resolver=self._guarded,
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=self._keepalive_timeout,
                ttl_dns_cache=self._dns_cache_ttl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry cookies between tenants
                headers={"User-Agent": self._user_agent},
                timeout=_client_timeout(self.timeouts),
                auto_decompress=True,
                trust_env=False,  # an environment proxy would bypass the SSRF guard
            )
        return self._session

    def _open_pool(self) -> Http1Pool:
        if self._pool is None:
            self._open_session()
            assert self._guarded is not None
            self._pool = Http1Pool(
                self._guarded,
                limit=self._limit,
                keepalive_timeout=self._keepalive_timeout,
                dns_cache_ttl=self._dns_cache_ttl,
                user_agent=self._user_agent,
            )
        return self._pool

    async def close(self) -> None:
        """Close the connection pools and the resolver."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._guarded is not None:
            await self._guarded.close()
            self._guarded = None
            self._resolver = None

    async def validate_url(self, url: str | URL) -> None:
        """Check a URL when it is configured, with this client's policy and resolver.

        Raises:
            InvalidURL, BlockedDestination, DNSError: see `AddressPolicy.validate_url`.
        """
        self._open_session()
        await self.address_policy.validate_url(url, self._resolver)

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
        """Send a request and read the whole response.

        Args:
            method: HTTP method.
            url: absolute http(s) URL.
            headers: request headers.
            body: request body; a stream is sent once and never retried.
            timeouts: timeouts for this call (default: the client's).
            ssl_context: an SSL context, or a `ClientCertificate` for mutual TLS (its
                context is built once and cached by fingerprint). None: verify against
                the system trust store.
            policy: retry, breaker and rate-limit policy (None: a single plain attempt).
            max_body: read at most this many body bytes (default: the client's
                ``max_body_bytes``); the rest is drained or the connection dropped.

        Returns:
            The response, whatever its status.

        Raises:
            EgressError: see `interlink.egress.errors`; ``attempts`` says how many were made.
        """
        started = time.perf_counter()
        call = self._call(method, url, headers, body, timeouts, ssl_context, policy)
        cap = self.max_body_bytes if max_body is None else max_body
        if policy is None:
            self.address_policy.check_literal_host(call.host)
            response = await self._send(call, cap)
        elif policy.retry is None or not call.replayable:
            response = await self._attempt(call, cap)
        else:

            async def attempt(number: int) -> EgressResponse:
                return await self._attempt(call, cap)

            response, attempts = await policy.retry.run(method, headers, attempt)
            response.attempts = attempts
        response.elapsed = time.perf_counter() - started
        return response

    async def send(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeouts: Timeouts | None = None,
        ssl_context: SSLOption = None,
        max_body: int | None = None,
    ) -> EgressResponse:
        """`request` for a hot path: one attempt, no policy, through `Http1Pool` rather than
        aiohttp (webhook delivery: the measured difference is in docs/egress.md).

        Nothing asks for a compressed answer (no ``Accept-Encoding`` is added), and a body
        compressed all the same is returned as it came. The body is read up to ``max_body``
        bytes (default: the client's ``max_body_bytes``) and the rest drained, or the
        connection dropped when more than ``drain_limit`` is left. Errors are as for `request`.
        """
        started = time.perf_counter()
        call = self._call(method, url, headers, body, timeouts, ssl_context, None)
        cap = self.max_body_bytes if max_body is None else max_body
        upstream = await self._open_stream(call)
        try:
            content, truncated = await self._read_stream_capped(upstream, cap)
        finally:
            await upstream.aclose()
        response = EgressResponse(upstream.status, upstream.headers, content, truncated=truncated)
        response.elapsed = time.perf_counter() - started
        return response

    async def _read_stream_capped(
        self, upstream: EgressStream, cap: int | None
    ) -> tuple[bytes, bool]:
        """The body up to ``cap`` bytes and whether some was left out. What is left is drained
        up to ``drain_limit``; beyond that the stream is left unread, so that closing it drops
        the connection instead of reading on."""
        chunks: list[bytes] = []
        size = drained = 0
        async for chunk in upstream.iter_chunks():
            if cap is None or size < cap:
                kept = chunk if cap is None else chunk[: cap - size]
                chunks.append(kept)
                size += len(kept)
                drained += len(chunk) - len(kept)
            else:
                drained += len(chunk)
            if drained > self.drain_limit:
                break
        return b"".join(chunks), drained > 0

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        timeouts: Timeouts | None = None,
        ssl_context: SSLOption = None,
        policy: RequestPolicy | None = None,
    ) -> AsyncIterator[EgressStream]:
        """Send a request and yield the response before its body is read (for the proxy).

        The body is passed through as sent (still gzip-encoded when the provider compressed
        it, matching its ``Content-Encoding``); no ``Accept-Encoding`` is added to what the
        caller sent. Retries happen only before the response is yielded. The connection is
        released on exit. Arguments are as for `request`; the total timeout covers the stream
        until it is closed. Streams go through `Http1Pool`, a lean HTTP/1.1 client, rather
        than aiohttp: the proxy's throughput is bounded by its CPU per call.

        Example:
            >>> async with client.stream("GET", url, headers=h) as upstream:
            ...     async for chunk in upstream.iter_chunks():
            ...         await send(chunk)
        """
        upstream = await self.open_stream(
            method,
            url,
            headers=headers,
            body=body,
            timeouts=timeouts,
            ssl_context=ssl_context,
            policy=policy,
        )
        try:
            yield upstream
        finally:
            await upstream.aclose()

    async def open_stream(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        timeouts: Timeouts | None = None,
        ssl_context: SSLOption = None,
        policy: RequestPolicy | None = None,
    ) -> EgressStream:
        """`stream` without the context manager, for a hot path that saves its cost: the
        caller must ``await upstream.aclose()`` in a ``finally``."""
        started = time.perf_counter()
        call = self._call(method, url, headers, body, timeouts, ssl_context, policy)
        if policy is None or policy.retry is None or not call.replayable:
            upstream = await self._open_stream(call)
        else:
            attempt = partial(self._open_stream, call)
            upstream, attempts = await policy.retry.run(method, headers, attempt, _discard)
            upstream.attempts = attempts
        upstream.elapsed = time.perf_counter() - started
        return upstream

    def _call(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str] | None,
        body: Body,
        timeouts: Timeouts | None,
        ssl_context: SSLOption,
        policy: RequestPolicy | None,
    ) -> _Call:
        target = _parse_url(url)
        if ssl_context is None:
            tls: ssl.SSLContext | bool = True
        elif isinstance(ssl_context, ClientCertificate):
            tls = self._tls.get(ssl_context)
        else:
            tls = ssl_context
        chosen = timeouts or self.timeouts
        return _Call(
            method,
            target,
            target.raw_host or "",
            headers,
            body,
            chosen,
            _client_timeout(chosen),
            tls,
            policy,
        )

    def _breaker_for(self, call: _Call) -> CircuitBreaker | None:
        policy = call.policy
        if policy is None or not policy.circuit_breaker or self.breakers is None:
            return None
        target = call.target
        key = call.host if target.is_default_port() else f"{call.host}:{target.port}"
        return self.breakers.get(key)

    def _limited(self, call: _Call) -> bool:
        """Whether the call takes a token from a rate limit."""
        policy = call.policy
        return policy is not None and bool(policy.rate_limit_key) and self.rate_limiter is not None

    async def _before_attempt(self, call: _Call) -> None:
        self.address_policy.check_literal_host(call.host)
        await self._take_token(call)

    async def _take_token(self, call: _Call) -> None:
        policy, limiter = call.policy, self.rate_limiter
        if policy is not None and policy.rate_limit_key and limiter is not None:
            await limiter.acquire(
                policy.rate_limit_key, max_wait=policy.max_rate_limit_wait, limit=policy.rate_limit
            )

    async def _after_response(self, call: _Call, headers: CIMultiDictProxy[str]) -> None:
        policy, limiter = call.policy, self.rate_limiter
        if (
            policy is not None
            and policy.rate_limit_key
            and policy.observe_rate_limit_headers
            and limiter is not None
        ):
            await limiter.observe_headers(policy.rate_limit_key, headers, limit=policy.rate_limit)

    async def _attempt(self, call: _Call, cap: int | None) -> EgressResponse:
        await self._before_attempt(call)
        breaker = self._breaker_for(call)
        if breaker is None:
            response = await self._send(call, cap)
        else:
            permit = breaker.acquire()
            try:
                response = await self._send(call, cap)
            except EgressError as exc:
                breaker.record(permit, True if is_host_failure(exc) else None)
                raise
            except BaseException:
                breaker.record(permit, None)
                raise
            breaker.record(permit, response.status >= 500)
        await self._after_response(call, response.headers)
        return response

    async def _send(self, call: _Call, cap: int | None) -> EgressResponse:
        session = self._session or self._open_session()
        try:
            async with session.request(
                call.method,
                call.target,
                headers=call.headers,
                data=call.body,
                timeout=call.timeout,
                ssl=call.tls,
                allow_redirects=False,
            ) as response:
                if cap is None:
                    content, truncated = await response.read(), False
                else:
                    content, truncated = await self._read_capped(response, cap)
                return EgressResponse(
                    response.status, response.headers, content, truncated=truncated
                )
        except EgressError:
            raise
        except _TRANSPORT_ERRORS as exc:
            raise translate_aiohttp_error(exc, str(call.target)) from exc

    async def _read_capped(self, response: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
        stream = response.content
        chunks: list[bytes] = []
        size = 0
        while size < cap:
            chunk = await stream.read(cap - size)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        drained = 0
        while drained <= self.drain_limit:
            chunk = await stream.readany()
            if not chunk:
                return b"".join(chunks), drained > 0
            drained += len(chunk)
        response.close()  # too much left to drain: drop the connection instead
        return b"".join(chunks), True

    async def _open_stream(self, call: _Call, number: int = 1) -> EgressStream:
        """One attempt at ``call`` (attempt ``number``, as the retry policy counts them)."""
        # The limiter is awaited only when a limit applies: a coroutine costs more than checks.
        self.address_policy.check_literal_host(call.host)
        limited = self._limited(call)
        if limited:
            await self._take_token(call)
        breaker = self._breaker_for(call)
        permit = breaker.acquire() if breaker is not None else 0
        pool = self._pool or self._open_pool()
        try:
            upstream = await pool.open(
                call.method, call.target, call.headers, call.body, call.timeouts, call.tls
            )
        except EgressError as exc:
            if breaker is not None:
                breaker.record(permit, True if is_host_failure(exc) else None)
            raise
        except BaseException:
            if breaker is not None:
                breaker.record(permit, None)
            raise
        if breaker is not None:
            breaker.record(permit, upstream.status >= 500)
        if limited:
            try:
                await self._after_response(call, upstream.headers)
            except BaseException:
                await upstream.aclose()
                raise
        return upstream


@dataclass(slots=True)
class _Call:
    """One call's arguments, resolved once and shared by its attempts."""

    method: str
    target: URL
    host: str
    headers: Mapping[str, str] | None
    body: Body
    timeouts: Timeouts
    timeout: aiohttp.ClientTimeout
    tls: ssl.SSLContext | bool
    policy: RequestPolicy | None

    @property
    def replayable(self) -> bool:
        return isinstance(self.body, bytes | None)


def _parse_url(url: str | URL) -> URL:
    if isinstance(url, URL):
        target = url
    else:
        try:
            target = URL(url)
        except ValueError as exc:
            raise InvalidURL(url, str(exc)) from exc
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise InvalidURL(str(url), "an absolute http or https URL is required")
    return target
