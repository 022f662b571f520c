"""The ingest route as documented in OpenAPI; requests are served by :mod:`..ingest` directly.

``POST /in/{source_id}`` is mounted as a raw ASGI app ahead of FastAPI
(``Capability.asgi_mounts``), so FastAPI never routes it. This declaration exists for
``/openapi.json``; should an app include the router without the fast path, its handler hands
the request to the same ASGI app.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from interlink.webhooks.inbound.ingest import ingest_app

__all__ = ["router"]

router = APIRouter(tags=["inbound webhooks"])

_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}
_ACK = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The received event's id (evt_...)"},
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
        "seen_count": {"type": "integer"},
    },
}


class _ServedByIngestApp(Response):
    """A response that lets the ingest ASGI app answer the request itself."""

    def __init__(self, request: Request) -> None:
        super().__init__()
        self._receive = request.receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await ingest_app(scope, self._receive, send)


async def ingest_webhook(
    request: Request,
    source_id: Annotated[str, Path(max_length=60, description="The source id (src_...)")],
) -> Response:
    """Where a provider posts its webhooks.

    The signature is verified on the raw bytes with the source's verifier; the event is
    deduplicated by the provider's delivery id and durably stored before the answer. A
    duplicate answers 200 with ``status: duplicate`` and is not processed again. Slack's
    ``url_verification`` is answered with its challenge.
    """
    return _ServedByIngestApp(request)


router.add_api_route(
    "/in/{source_id}",
    ingest_webhook,
    methods=["POST"],
    summary="Receive a provider's webhook",
    operation_id="ingest_webhook",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The provider's webhook, exactly as it sends it (JSON or a form)",
            "content": {
                "application/json": {"schema": {}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            },
        }
    },
    responses={
        200: {
            "description": "Stored (or a duplicate of a stored delivery)",
            "content": {"application/json": {"schema": _ACK}},
        },
        400: {"description": "Authentic but malformed body", "content": _PROBLEM},
        401: {
            "description": "Signature missing, invalid or stale (`check` says which)",
            "content": _PROBLEM,
        },
        404: {"description": "No such source, or disabled", "content": _PROBLEM},
        413: {"description": "Body over the source's size limit", "content": _PROBLEM},
        429: {
            "description": "Rate limit of the source exceeded; see Retry-After",
            "content": _PROBLEM,
        },
        503: {
            "description": "Store unavailable: nothing stored; see Retry-After",
            "content": _PROBLEM,
        },
    },
)
