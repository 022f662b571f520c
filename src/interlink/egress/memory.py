"""In-memory egress for tests: answers from a handler and records every request.

`InMemoryEgress` implements the `Egress` port without a network. The SSRF guard still
applies to literal addresses and to `validate_url` (names resolve through a
`StaticResolver`), so a service under test is refused exactly what production refuses.
Policies (retry, breaker, rate limit) are recorded with the request, not applied.

Example:
    >>> async def receiver(request: RecordedRequest) -> EgressResponse:
    ...     return make_response(200, b"ok")
    >>> egress = InMemoryEgress(receiver)
    >>> await egress.request("POST", "https://hooks.example/in", body=b"{}")
    >>> egress.requests[0].body
    b'{}'
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from interlink.egress.errors import InvalidURL
from interlink.egress.port import (
    Body,
    EgressResponse,
    EgressStream,
    RequestPolicy,
    SSLOption,
    Timeouts,
)
from interlink.egress.ssrf import AddressPolicy

__all__ = ["InMemoryEgress", "RecordedRequest", "StaticResolver", "make_response"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as `InMemoryEgress` received it (a streamed body is read in full)."""

    method: str
    url: URL
    headers: CIMultiDictProxy[str]
    body: bytes
    timeouts: Timeouts | None
    ssl_context: SSLOption
    policy: RequestPolicy | None


Handler = Callable[[RecordedRequest], Awaitable[EgressResponse]]


def make_response(
    status: int = 200,
    body: bytes = b"",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> EgressResponse:
    """Build an `EgressResponse` for a test handler."""
    return EgressResponse(status, CIMultiDictProxy(CIMultiDict(headers or {})), body)


async def _ok(request: RecordedRequest) -> EgressResponse:
    return make_response(200)


class StaticResolver(AbstractResolver):
    """Resolves names from a fixed table; unknown names fail like NXDOMAIN.

    Args:
        hosts: name -> addresses (``{"hooks.example": ["93.184.215.14"]}``).
    """

    def __init__(self, hosts: Mapping[str, Sequence[str]] | None = None) -> None:
        self.hosts = dict(hosts or {})

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The table's addresses for `host`; OSError when it has none."""
        addresses = self.hosts.get(host)
        if not addresses:
            raise OSError(f"{host} is not in the static resolver's table")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


class InMemoryEgress:
    """`Egress` without a network.

    Args:
        handler: answers each request (default: 200 with an empty body); may raise an
            `EgressError` to simulate a failure.
        address_policy: the SSRF guard (default: refuse every private range).
        hosts: the name table `validate_url` resolves with.

    Attributes:
        requests: every request received, in order.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        address_policy: AddressPolicy | None = None,
        hosts: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.handler = handler or _ok
        self.address_policy = address_policy or AddressPolicy()
        self.resolver = StaticResolver(hosts)
        self.requests: list[RecordedRequest] = []

    async def _receive(
        self,
        method: str,
        url: str | URL,
        headers: Mapping[str, str] | None,
        body: Body,
        timeouts: Timeouts | None,
        ssl_context: SSLOption,
        policy: RequestPolicy | None,
    ) -> EgressResponse:
        target = url if isinstance(url, URL) else URL(url)
        if target.scheme not in ("http", "https") or not target.raw_host:
            raise InvalidURL(str(url), "an absolute http or https URL is required")
        self.address_policy.check_literal_host(target.raw_host)
        if body is None or isinstance(body, bytes):
            content = body or b""
        else:
            content = b"".join([chunk async for chunk in body])
        recorded = RecordedRequest(
            method.upper(),
            target,
            CIMultiDictProxy(CIMultiDict(headers or {})),
            content,
            timeouts,
            ssl_context,
            policy,
        )
        self.requests.append(recorded)
        return await self.handler(recorded)

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
        """Record the request and return the handler's response (body cut to `max_body`)."""
        response = await self._receive(method, url, headers, body, timeouts, ssl_context, policy)
        if max_body is not None and len(response.body) > max_body:
            response.body, response.truncated = response.body[:max_body], True
        return response

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
        """Record the request and stream the handler's response body as one chunk."""
        response = await self._receive(method, url, headers, body, timeouts, ssl_context, policy)

        async def chunks() -> AsyncIterator[bytes]:
            if response.body:
                yield response.body

        async def release() -> None:
            return None

        yield EgressStream(response.status, response.headers, chunks(), release)

    async def validate_url(self, url: str | URL) -> None:
        """Check a URL with the policy, resolving names through the static table."""
        await self.address_policy.validate_url(url, self.resolver)
