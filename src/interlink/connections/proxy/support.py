"""Pieces of the proxy: header filtering, path templates and Interlink's own error answers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson
from starlette.types import Receive, Scope, Send

from interlink.api.deps import authenticate_header
from interlink.api.errors import PROBLEM_BASE, Problem
from interlink.auth.principal import Principal
from interlink.egress import (
    BlockedDestination,
    CircuitOpen,
    EgressError,
    EgressStream,
    EgressTimeout,
    InvalidRequest,
    InvalidURL,
    RateLimited,
)

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = [
    "MAX_REQUEST_BODY",
    "ProxyProblem",
    "authenticate_caller",
    "declares_body",
    "forwardable_request_headers",
    "path_template",
    "problem_of",
    "read_body",
    "response_headers",
    "send_problem",
]

# RFC 9110 section 7.6.1 hop-by-hop headers, plus what the proxy sets itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection",
    }
)  # fmt: skip
_DROPPED_REQUEST = _HOP_BY_HOP | {b"authorization", b"cookie", b"host", b"content-length"}
# Content-Length stays: the body is relayed byte for byte (still compressed if it was). Date
# goes: the server dates every answer it sends, and a second Date would make the header invalid
# (RFC 9110 section 6.6.1 allows one).
_DROPPED_RESPONSE = _HOP_BY_HOP | {b"set-cookie", b"date"}
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
_DROPPED_TEXT = {name.decode() for name in _DROPPED_RESPONSE}
MAX_REQUEST_BODY = 10 << 20
# Callers send the same few header names again and again: what becomes of each is kept
# (bounded; cleared when full).
_FORWARDED_NAMES: dict[bytes, str | None] = {}
_NAMES_KEPT = 4096
# Callers repeat the same few paths: their templates are kept (bounded; cleared when full).
_TEMPLATES: dict[str, str] = {}
_TEMPLATES_KEPT = 4096
_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-f-]{16,}|[A-Za-z]+_[A-Za-z0-9]{6,}|[A-Za-z0-9]{15,18})$")


class ProxyProblem(Exception):
    """An error of Interlink itself (not the provider's), answered as problem+json."""

    def __init__(
        self, status: int, slug: str, detail: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail, self.retry_after = status, slug, detail, retry_after


def forwardable_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The caller's headers minus hop-by-hop ones, its own credentials and Host."""
    headers: dict[str, str] = {}
    names = _FORWARDED_NAMES
    for name, value in raw:
        try:
            text = names[name]
        except KeyError:
            text = _forwarded_name(name)
        if text is not None:
            headers[text] = value.decode("latin-1")
    return headers


def _forwarded_name(name: bytes) -> str | None:
    """The name ``name`` is forwarded under, or None for a header the proxy drops; kept."""
    lowered = name.lower()
    if lowered in _DROPPED_REQUEST or lowered.startswith(b"x-interlink-"):
        text = None
    else:
        text = name.decode("latin-1")
    if len(_FORWARDED_NAMES) >= _NAMES_KEPT:
        _FORWARDED_NAMES.clear()
    _FORWARDED_NAMES[name] = text
    return text


def response_headers(upstream: EgressStream) -> list[tuple[bytes, bytes]]:
    """The provider's headers minus hop-by-hop ones and cookies meant for the provider's site."""
    if upstream.raw_headers is not None:
        return [
            (lowered, value)
            for name, value in upstream.raw_headers
            if (lowered := name.lower()) not in _DROPPED_RESPONSE
        ]
    return [
        (text.encode("latin-1"), value.encode("latin-1"))
        for name, value in upstream.headers.items()
        if (text := name.lower()) not in _DROPPED_TEXT
    ]


def path_template(path: str) -> str:
    """``/v1/customers/cus_123abc`` → ``/v1/customers/{id}``: what events and metrics carry."""
    template = _TEMPLATES.get(path)
    if template is None:
        parts = [("{id}" if _ID_SEGMENT.match(part) else part) for part in path.split("/")]
        template = "/".join(parts)[:300]
        if len(_TEMPLATES) >= _TEMPLATES_KEPT:
            _TEMPLATES.clear()
        _TEMPLATES[path] = template
    return template


def problem_of(error: EgressError, provider: str) -> ProxyProblem:
    """Translate an egress failure into Interlink's problem (provider errors pass untouched)."""
    if isinstance(error, CircuitOpen):
        return ProxyProblem(
            503, "circuit-open",
            f"{provider} is failing; calls are refused until it recovers ({error})",
            retry_after=max(1.0, error.retry_after),
        )  # fmt: skip
    if isinstance(error, RateLimited):
        return ProxyProblem(
            429, "rate-limited",
            f"the client-side rate limit of {provider} is exhausted ({error})",
            retry_after=max(1.0, error.retry_after),
        )  # fmt: skip
    if isinstance(error, BlockedDestination):
        return ProxyProblem(502, "blocked-destination", f"refused destination: {error}")
    if isinstance(error, InvalidURL):
        return ProxyProblem(422, "invalid-url", f"the proxied URL is invalid: {error}")
    if isinstance(error, InvalidRequest):
        return ProxyProblem(422, "invalid-request", f"the request cannot be forwarded: {error}")
    if isinstance(error, EgressTimeout):
        return ProxyProblem(504, "provider-timeout", f"{provider} did not answer in time: {error}")
    return ProxyProblem(502, "provider-unreachable", f"{provider} could not be reached: {error}")


async def send_problem(
    send: Send, problem: ProxyProblem, *, instance: str, request_id: str | None
) -> None:
    """Answer with an RFC 9457 problem document."""
    body = {
        "type": PROBLEM_BASE + problem.slug,
        "title": problem.slug.replace("-", " ").capitalize(),
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if request_id:
        body["request_id"] = request_id
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if problem.retry_after is not None:
        headers.append((b"retry-after", str(math.ceil(problem.retry_after)).encode()))
    if problem.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="interlink"'))
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def authenticate_caller(runtime: Runtime, scope: Scope) -> Principal:
    """The caller's principal, through the core's cached bearer authentication."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    try:
        return await authenticate_header(runtime, authorization)
    except Problem as problem:
        raise ProxyProblem(problem.status, problem.slug, problem.detail) from problem


def declares_body(raw: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request with these headers has a body to read: an HTTP/1.1 request without
    ``Content-Length`` or ``Transfer-Encoding`` has none (RFC 9112 section 6.3), and the proxy
    then skips the ASGI ``receive`` round.

    Example:
        >>> declares_body([(b"accept", b"*/*")]), declares_body([(b"content-length", b"2")])
        (False, True)
    """
    return any(name in _BODY_HEADERS for name, _ in raw)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (kept, so that a retry can send it again), or None."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BODY:
            raise ProxyProblem(413, "payload-too-large", "the request body exceeds 10 MiB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size else None
