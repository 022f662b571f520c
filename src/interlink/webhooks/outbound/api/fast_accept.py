"""The message-accept route as a raw ASGI app, served ahead of FastAPI (``asgi_mounts``).

Routing a request through FastAPI's router costs more than storing the message, so
``POST /v1/tenants/{tenant_id}/messages`` is answered here; the core's fast-path middleware
sends only that method and path (``MOUNT``) to this app.
"""

from __future__ import annotations

import re

import structlog
from starlette.types import Receive, Scope, Send

from interlink.api.errors import exception_response, problem_response
from interlink.webhooks.outbound.api.accept_route import accept

__all__ = ["MAX_BODY_BYTES", "MOUNT", "MessageAcceptApp"]

MAX_BODY_BYTES = 1 << 20
_PATTERN = r"^/v1/tenants/([^/]+)/messages/?$"
_PATH = re.compile(_PATTERN)
MOUNT = f"POST {_PATTERN}"
log = structlog.get_logger("interlink.outbound")


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class MessageAcceptApp:
    """Serves ``POST /v1/tenants/{tenant_id}/messages``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = _PATH.match(scope["path"])
        assert matched is not None  # the mount pattern is the same expression
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        request_id = scope.get("state", {}).get("request_id")
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            body, answer_headers = await accept(
                scope["app"].state.runtime,
                matched.group(1),
                await _read_body(receive),
                authorization=headers.get("authorization", ""),
                idempotency_key=headers.get("idempotency-key"),
            )
        except _TooLarge:
            response = problem_response(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        except Exception as error:  # every failure leaves as problem+json, never a crash
            response = exception_response(error, scope["path"])
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 202,
                    "headers": [(k.encode(), v.encode()) for k, v in answer_headers.items()],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        await response(scope, receive, send)
