"""The proxy as an OpenAPI operation, served by the raw ASGI app itself.

When the core serves ``Capability.asgi_mounts`` the mounted app answers before FastAPI and this
route only documents the operation; otherwise the route hands the request to the same app.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from interlink.connections.proxy import ProxyApp

__all__ = ["router"]

_proxy = ProxyApp()


class _Delegate(Response):
    """A response that lets the proxy app answer the request itself."""

    def __init__(self, request: Request) -> None:
        super().__init__()
        self._request = request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _proxy(scope, receive, send)


class ProxyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handle(request: Request) -> Response:
            return _Delegate(request)

        return handle


router = APIRouter(tags=["proxy"])
_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}


async def proxy(
    request: Request,
    connection_id: Annotated[str, Path(max_length=60, description="Connection id (con_...)")],
    path: Annotated[str, Path(description="Path at the provider, relative to its base URL")],
) -> Response:
    """Forward the request to the provider with the connection's credentials.

    Method, query, body and headers are forwarded (minus hop-by-hop headers and the caller's
    ``Authorization``, ``Cookie`` and ``Host``); the answer is streamed back with
    ``X-Interlink-Attempts`` and ``X-Interlink-RateLimit-Remaining``. The provider's own errors
    pass through unchanged; Interlink's are problem+json: 404 unknown connection, 424
    connection expired or revoked, 429 client-side rate limit, 502 provider unreachable or
    refused destination, 503 circuit open, 504 provider timeout.
    """
    return _Delegate(request)


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    router.add_api_route(
        "/v1/proxy/{connection_id}/{path:path}",
        proxy,
        methods=[_method],
        route_class_override=ProxyRoute,
        summary=f"{_method} at a provider through a connection",
        operation_id=f"proxy_{_method.lower()}",
        responses={
            200: {"description": "The provider's answer, as it sent it"},
            404: {"description": "No such connection (or another tenant's)", "content": _PROBLEM},
            424: {"description": "The connection must be authorized again", "content": _PROBLEM},
            429: {"description": "Client-side rate limit exhausted", "content": _PROBLEM},
            502: {"description": "Provider unreachable", "content": _PROBLEM},
            503: {"description": "Circuit breaker open", "content": _PROBLEM},
        },
    )
