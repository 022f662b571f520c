"""The ingest route, declared to FastAPI for OpenAPI but served by a bare handler.

:class:`IngestRoute` is an ``APIRoute`` whose handler is :func:`handle_ingest` itself, so no
dependency resolution or body validation runs on the hot path while the operation still appears
in ``/openapi.json`` with its real request and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from interlink.webhooks.inbound.ingest import handle_ingest

__all__ = ["IngestRoute", "router"]


class IngestRoute(APIRoute):
    """Serves its path with :func:`handle_ingest` directly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return handle_ingest


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
    return await handle_ingest(request)


router.add_api_route(
    "/in/{source_id}",
    ingest_webhook,
    methods=["POST"],
    route_class_override=IngestRoute,
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
