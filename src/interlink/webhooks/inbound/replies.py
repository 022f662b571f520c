"""Reading the request body and writing problem answers at the ASGI level (the ingest fast path).

The fast path runs outside FastAPI's middleware, so the request id is taken from the scope
(``FastPaths`` put it there) rather than from the logging context.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Message, Receive, Scope, Send

from interlink.api.errors import problem_response

__all__ = ["ClientGone", "answer_problem", "read_body", "unavailable"]


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is nobody to answer."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed ``limit`` bytes.

    Raises:
        ClientGone: the client disconnected first.
    """
    declared = _declared_length(scope)
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


async def answer_problem(
    scope: Scope,
    send: Send,
    request_id: str | None,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> None:
    """Answer ``status`` as ``application/problem+json`` carrying the request id."""
    if request_id:
        extra["request_id"] = request_id
    response = problem_response(
        status,
        detail,
        slug=slug,
        title=title,
        instance=scope["path"][:100],
        headers=headers,
        **extra,
    )
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def unavailable(scope: Scope, send: Send, request_id: str | None) -> None:
    """503 with ``Retry-After``: nothing was stored."""
    await answer_problem(
        scope,
        send,
        request_id,
        503,
        "the store is unavailable; nothing was accepted, retry shortly",
        slug="store-unavailable",
        headers={"Retry-After": "1"},
    )
