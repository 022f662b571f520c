"""Plain ASGI middleware: request id, access log, Prometheus metrics and a trace span."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.observability.metrics import Metrics

__all__ = ["FastPaths", "RequestContextMiddleware"]

log = structlog.get_logger("interlink.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Request ids only need to be unique, not secret (they are echoed to the caller): a random
# per-process prefix and a counter, where a fresh random token per request cost a syscall.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(secrets.randbelow(1 << 20))


def _reseed() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = secrets.token_hex(8)
    _ID_COUNTER = itertools.count(secrets.randbelow(1 << 20))


os.register_at_fork(after_in_child=_reseed)  # a forked worker must not repeat its parent's ids


def new_request_id() -> str:
    """A 24-character hex id, unique across processes and restarts (with overwhelming odds)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, tracer: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else None
        request_id = request_id or new_request_id()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope["path"]:
            # Nothing Interlink stores can hold NUL; refuse it before any route sees it.
            await _refuse_nul(scope, send, request_id)
            return
        status = 500
        started = time.perf_counter()
        method = scope["method"]
        header = (b"x-request-id", request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        with self.tracer.start_as_current_span(
            f"{method} {scope['path']}", kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("interlink.request_id", request_id)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self.metrics.http_requests.labels(method, template, str(status)).inc()
                self.metrics.http_latency.labels(method, template).observe(elapsed)
                if scope["path"] not in _QUIET_PATHS:
                    log.info(
                        "request",
                        method=method,
                        route=template,
                        status=status,
                        duration_ms=round(elapsed * 1000, 2),
                    )
                structlog.contextvars.clear_contextvars()


async def _refuse_nul(scope: Scope, send: Send, request_id: str) -> None:
    from interlink.api.errors import problem_response

    response = problem_response(
        400, "the URL contains a NUL character", slug="bad-request", instance=scope["path"]
    )
    response.headers["x-request-id"] = request_id
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class FastPaths:
    """Serve hot paths (webhook ingestion, message acceptance, the proxy) by raw ASGI apps.

    A capability lists ``asgi_mounts``: a key is either a path prefix (``"/in/"``) or a method
    and a regular expression matched against the whole path
    (``"POST ^/v1/tenants/[^/]+/messages$"``). The application (``interlink.api.app``) asks
    :meth:`match` before anything of FastAPI runs, so matching requests skip its middleware
    stack, routing, dependency injection and the request-context middleware; the mounted app
    answers its own errors as problem+json (``interlink.api.errors.exception_response``), and
    an exception that escapes it still gets one. This keeps the request id, a metric per mount
    and nothing else. ``scope["app"].state.runtime`` reaches the runtime.
    """

    def __init__(self, mounts: Sequence[tuple[str, ASGIApp]], metrics: Metrics):
        self.metrics = metrics
        self.prefixes: list[tuple[str, str, ASGIApp]] = []  # prefix, route label, app
        self.patterns: list[tuple[str, str, re.Pattern[str], ASGIApp]] = []
        for key, target in mounts:
            method, _, pattern = key.partition(" ")
            if pattern.startswith("^"):
                self.patterns.append((pattern, method.upper(), re.compile(pattern), target))
            else:
                self.prefixes.append((key, f"{key}*", target))

    def match(self, scope: Scope) -> tuple[str, ASGIApp] | None:
        """The route label and app serving this HTTP request, or None for FastAPI."""
        path: str = scope["path"]
        for prefix, route, target in self.prefixes:
            if path.startswith(prefix):
                return route, target
        for route, method, pattern, target in self.patterns:
            if scope["method"] == method and pattern.match(path):
                return route, target
        return None

    async def serve(
        self, route: str, target: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        if not request_id or not _VALID_REQUEST_ID.match(request_id):
            request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        status = 0
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await target(scope, receive, send_wrapper)
        except Exception as error:
            if status:
                raise  # the answer has begun; nothing can be said any more
            from interlink.api.errors import exception_response

            response = exception_response(error, scope["path"])
            await response(scope, _no_receive, send_wrapper)
        finally:
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status or 500)).inc()
            self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - started)
