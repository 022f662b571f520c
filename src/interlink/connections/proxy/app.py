"""The proxy as a raw ASGI app, served ahead of FastAPI (``Capability.asgi_mounts``).

Per request: authenticate the bearer through the core's cached path, load the connection
from the short-lived cache, refresh its token if due, inject its credentials and API version,
and stream the provider's answer back through the resilient egress layer (retries, rate
limits, breaker). No database write happens on the hot path: events are buffered.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from starlette.types import Receive, Scope, Send

from interlink.connections.catalog import CatalogError, TemplateError
from interlink.connections.credentials import ConnectionView, request_auth
from interlink.connections.proxy.support import (
    ProxyProblem,
    authenticate_caller,
    declares_body,
    forwardable_request_headers,
    path_template,
    problem_of,
    read_body,
    response_headers,
    send_problem,
)
from interlink.connections.refresh import ConnectionUnusable, RefreshFailed, ensure_fresh, load_view
from interlink.connections.state import ConnectionsState, connections_state
from interlink.egress import EgressError, EgressStream, RateLimited, RequestPolicy
from interlink.vault import VaultError

__all__ = ["PREFIX", "ProxyApp"]

PREFIX = "/v1/proxy/"
SMALL_BODY = 256 << 10
_CONNECTION_ID = re.compile(r"^[A-Za-z0-9_]{1,60}$")
# A "." or ".." segment, percent-encoded or not (RFC 3986 section 5.2.4 removes them).
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2[eE]){1,2}(?:/|$)")


class ProxyApp:
    """``ANY /v1/proxy/{connection_id}/{path}`` as an ASGI application."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = scope["app"].state.runtime
        state = connections_state(runtime)
        request_id = scope.get("state", {}).get("request_id")
        try:
            await self._serve(state, scope, receive, send)
        except ProxyProblem as problem:
            await send_problem(send, problem, instance=scope["path"], request_id=request_id)

    async def _serve(
        self, state: ConnectionsState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        # The raw path keeps the caller's percent-encoding (a%2Fb stays one segment).
        raw = scope.get("raw_path") or scope["path"].encode()
        connection_id, _, rest = (
            raw.decode("latin-1").partition("?")[0][len(PREFIX) :].partition("/")
        )
        if not _CONNECTION_ID.match(connection_id):
            raise ProxyProblem(404, "not-found", f"connection {connection_id[:60]} does not exist")
        if _DOT_SEGMENT.search(rest):
            # The URL parser would resolve them against the provider's base URL and leave its
            # path: /v1/proxy/{id}/../admin must not reach {host}/admin.
            raise ProxyProblem(
                422, "invalid-path", "the proxied path must not hold '.' or '..' segments"
            )
        principal = await authenticate_caller(state.runtime, scope)
        try:
            view = await load_view(state, connection_id)
        except (CatalogError, TemplateError, KeyError, VaultError) as error:
            raise ProxyProblem(
                424, "connection-error",
                f"connection {connection_id} cannot be used with the current catalog or keys: "
                f"{error}",
            ) from error  # fmt: skip
        if view is None or not principal.can_reach(view.tenant_id):
            raise ProxyProblem(404, "not-found", f"connection {connection_id} does not exist")
        view = await _fresh(state, view, None)
        raw_headers = scope["headers"]
        body = await read_body(receive) if declares_body(raw_headers) else None
        provider = view.provider
        policy = state.policy(provider)
        headers = forwardable_request_headers(raw_headers)
        if policy.provider_limit is not None:
            await _acquire(state, view, f"provider:{provider.name}", policy.provider_limit)
        request_policy = state.request_policy(view, policy)
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        upstream = await _open(state, view, method, rest, query, headers, body, request_policy)
        if upstream.status == 401 and view.refreshable:
            await upstream.aclose()
            view = await _fresh(state, view, view.version)
            upstream = await _open(state, view, method, rest, query, headers, body, request_policy)
        try:
            await _relay(state, view, upstream, send, policy.remaining_header)
        finally:
            await upstream.aclose()
        _record(state, view, method, rest, upstream, time.perf_counter() - started)


async def _fresh(
    state: ConnectionsState, view: ConnectionView, rejected: int | None
) -> ConnectionView:
    try:
        fresh = await ensure_fresh(state, view, rejected_version=rejected)
    except ConnectionUnusable as error:
        raise ProxyProblem(
            424, f"connection-{error.status}",
            f"connection {view.id} is {error.status} ({error.reason}); the user must "
            "authorize it again",
        ) from error  # fmt: skip
    except RefreshFailed as error:
        raise ProxyProblem(502, "token-refresh-failed", f"refreshing the token failed: {error}",
                           retry_after=5.0) from error  # fmt: skip
    if fresh.status == "error" and not fresh.refreshable:
        raise ProxyProblem(424, "connection-error", f"connection {view.id}: {view.status_reason}")
    return fresh


async def _acquire(state: ConnectionsState, view: ConnectionView, key: str, limit: Any) -> None:
    try:
        await state.limiter.acquire(key, max_wait=state.max_rate_limit_wait, limit=limit)
    except RateLimited as error:
        _limited(state, view, key)
        raise problem_of(error, view.provider_name) from error


def _limited(state: ConnectionsState, view: ConnectionView, key: str) -> None:
    state.metrics.requests.labels(view.provider_name, "rate_limited").inc()
    data = {"connection_id": view.id, "provider": view.provider_name, "key": key}
    state.events.add("rate_limit.exceeded", data, tenant_id=view.tenant_id, subject=view.id)


async def _open(
    state: ConnectionsState,
    view: ConnectionView,
    method: str,
    rest: str,
    query: str,
    headers: dict[str, str],
    body: bytes | None,
    policy: RequestPolicy,
) -> EgressStream:
    state.provider_hosts[view.host] = view.provider_name
    auth_headers, auth_query = request_auth(view)
    merged = {**headers, **auth_headers}
    url = f"{view.base_url}/{rest}"
    if auth_query:
        query = f"{query}&{urlencode(auth_query)}" if query else urlencode(auth_query)
    if query:
        url = f"{url}?{query}"
    try:
        return await state.egress.open_stream(
            method,
            url,
            headers=merged,
            body=body,
            policy=policy,
            ssl_context=view.client_certificate,
        )
    except EgressError as error:
        outcome = error.error_class
        state.metrics.requests.labels(view.provider_name, outcome).inc()
        state.passive_for(view.provider_name).add(outcome != "rate_limited")
        if outcome == "rate_limited":
            _limited(state, view, f"connection:{view.id}")
        raise problem_of(error, view.provider_name) from error


async def _relay(
    state: ConnectionsState,
    view: ConnectionView,
    upstream: EgressStream,
    send: Send,
    remaining_header: str | None,
) -> None:
    headers = response_headers(upstream)
    headers.append((b"x-interlink-attempts", str(upstream.attempts).encode()))
    headers.append((b"x-interlink-connection-id", view.id.encode()))
    for name in (remaining_header, "X-RateLimit-Remaining", "RateLimit-Remaining"):
        if name and (value := upstream.headers.get(name)) is not None:
            headers.append((b"x-interlink-ratelimit-remaining", value.encode("latin-1")))
            break
    length = upstream.headers.get("Content-Length", "")
    if length.isdigit() and int(length) <= SMALL_BODY:
        # One write for the body of a small answer: no chunked framing, no extra syscall.
        body = await upstream.read()
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
    async for chunk in upstream.iter_chunks():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _record(
    state: ConnectionsState,
    view: ConnectionView,
    method: str,
    rest: str,
    upstream: EgressStream,
    elapsed: float,
) -> None:
    status = upstream.status
    provider = view.provider_name
    state.metrics.requests.labels(provider, f"{status // 100}xx").inc()
    state.metrics.duration.labels(provider).observe(upstream.elapsed)
    state.passive_for(provider).add(status >= 500)
    data = {
        "method": method,
        "path": path_template("/" + rest),
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "attempts": upstream.attempts,
        "connection_id": view.id,
        "provider": provider,
    }
    state.events.add("request.completed", data, tenant_id=view.tenant_id, subject=view.id)
    if status == 401:
        state.events.add(
            "auth.failed",
            {"connection_id": view.id, "provider": provider, "reason": "provider answered 401"},
            tenant_id=view.tenant_id,
            subject=view.id,
        )
