"""``POST /v1/tenants/{tenant_id}/messages``, declared to FastAPI for OpenAPI but served by a
bare handler: the hot path of the outbound service.

:class:`AcceptRoute` answers with :func:`accept_message` directly, so no dependency resolution
runs per request; it authenticates with the same cached lookup as every route, checks the
tenant (existence cached for a few seconds), validates the body with the same pydantic model,
and hands the message to the group-commit writer. Errors leave as problem+json through the
app's handlers, exactly as from any other route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from interlink import exact_json
from interlink.api.deps import authenticate_header
from interlink.api.errors import Problem
from interlink.runtime import Runtime
from interlink.tenants.service import get_tenant
from interlink.webhooks.outbound.api.schemas import MessageCreate
from interlink.webhooks.outbound.event_types import PayloadRejected
from interlink.webhooks.outbound.message_queries import public_message
from interlink.webhooks.outbound.messages import MessageRequest
from interlink.webhooks.outbound.state import outbound_state

__all__ = ["AcceptRoute", "accept", "accept_message", "rejected_payload"]

_TENANT_CACHE_SECONDS = 5.0
_MAX_KEY = 200


class AcceptRoute(APIRoute):
    """Serves its path with :func:`accept_message` directly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return accept_message


def rejected_payload(error: PayloadRejected) -> Problem:
    """The 422 for a payload that breaks its event type's schema, naming the field."""
    errors = [
        {"field": "payload" + (f".{v.path}" if v.path else ""), "message": v.message}
        for v in error.violations
    ] or [{"field": "event_type", "message": str(error)}]
    return Problem(422, str(error), slug="validation-error", errors=errors)


async def _check_tenant(runtime: Runtime, header: str, tenant_id: str) -> None:
    principal = await authenticate_header(runtime, header)
    if not principal.can_reach(tenant_id) or len(tenant_id) > 40:
        raise Problem.not_found("tenant", tenant_id)
    known: dict[str, float] = runtime.state.setdefault("outbound_tenants", {})
    now = time.monotonic()
    if known.get(tenant_id, 0.0) > now:
        return
    async with runtime.db.transaction() as conn:
        if await get_tenant(conn, tenant_id) is None:
            raise Problem.not_found("tenant", tenant_id)
    if len(known) > 10_000:
        known.clear()
    known[tenant_id] = now + _TENANT_CACHE_SECONDS


def _invalid(error: ValidationError) -> Problem:
    errors = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            reason = str(item.get("ctx", {}).get("error", "parse error"))
            return Problem(
                400,
                f"the request body is not valid JSON: {reason}",
                slug="malformed-json",
                title="Malformed JSON",
            )
        field = ".".join(["body", *(str(part) for part in item.get("loc", ()))])
        errors.append({"field": field, "message": item.get("msg", "")})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return Problem(422, f"{first['field']}: {first['message']}", errors=errors)


def _idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 0 < len(key) <= _MAX_KEY or not all("\x21" <= ch <= "\x7e" for ch in key):
        raise Problem(
            422,
            "header.Idempotency-Key: 1 to 200 printable ASCII characters without spaces",
            errors=[{"field": "header.Idempotency-Key", "message": "invalid"}],
        )
    return key


async def accept(
    runtime: Runtime,
    tenant_id: str,
    raw: bytes,
    *,
    authorization: str,
    idempotency_key: str | None,
) -> tuple[bytes, dict[str, str]]:
    """Authenticate, validate and store one message; returns the 202 body and headers.

    Raises:
        Problem: 401, 404 (tenant), 400 (malformed JSON) or 422 (invalid body or payload).
    """
    await _check_tenant(runtime, authorization, tenant_id)
    if not raw:
        missing = [{"field": "body", "message": "Field required"}]
        raise Problem(422, "body: Field required", errors=missing)
    try:
        body = MessageCreate.model_validate_json(raw)
    except ValidationError as error:
        raise _invalid(error) from error
    message = MessageRequest(
        tenant_id=tenant_id,
        event_type=body.event_type,
        payload=body.payload,
        idempotency_key=body.id or _idempotency_key(idempotency_key),
        ordering_key=body.ordering_key,
    )
    try:
        row, created = await outbound_state(runtime).writer.submit(message)
    except PayloadRejected as error:
        raise rejected_payload(error) from error
    headers = {"content-type": "application/json"}
    if not created:
        headers["idempotent-replayed"] = "true"
    return exact_json.dumps(public_message(row), utc_z=True), headers


async def accept_message(request: Request) -> Response:
    """Store a message and one delivery per matching endpoint, then answer 202."""
    body, headers = await accept(
        request.app.state.runtime,
        request.path_params["tenant_id"],
        await request.body(),
        authorization=request.headers.get("authorization", ""),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return Response(body, status_code=202, headers=headers)
