"""Every error leaves as RFC 9457 ``application/problem+json`` with a stable ``type``.

The ``type`` is ``https://interlink.dev/problems/<slug>``; clients switch on the slug, people
read ``detail``. Validation problems list each offending field in ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from interlink.store.database import StoreRejected, StoreUnavailable

__all__ = [
    "PROBLEM_BASE",
    "Problem",
    "exception_response",
    "install_error_handlers",
    "problem_response",
]

PROBLEM_BASE = "https://interlink.dev/problems/"
log = structlog.get_logger("interlink.api")

_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation error"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class Problem(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        default_slug, default_title = _SLUGS.get(status, ("error", "Error"))
        self.status = status
        self.detail = detail
        self.slug = slug or default_slug
        self.title = title or default_title
        self.headers = dict(headers or {})
        self.extra = extra

    @classmethod
    def not_found(cls, what: str, identifier: str) -> Problem:
        return cls(404, f"{what} {identifier} does not exist")


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    default_slug, default_title = _SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers=dict(headers or {}),
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    return ".".join(parts)


def _validation_problem(exc: RequestValidationError, request: Request) -> Response:
    errors = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return problem_response(
                400,
                "the request body is not valid JSON: "
                + str(error.get("ctx", {}).get("error", "parse error")),
                slug="malformed-json",
                title="Malformed JSON",
                instance=request.url.path,
            )
        errors.append({"field": _field_name(error.get("loc", ())), "message": error.get("msg", "")})
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    return problem_response(
        422,
        f"{first['field']}: {first['message']}",
        instance=request.url.path,
        errors=errors,
    )


def exception_response(error: Exception, path: str) -> Response:
    """The problem document for an exception raised while serving ``path``.

    The FastAPI handlers below and the fast-path apps (``asgi_mounts``) answer through this
    one mapping, so an error reads the same whichever way a request was served.
    """
    if isinstance(error, Problem):
        return problem_response(
            error.status,
            error.detail,
            slug=error.slug,
            title=error.title,
            instance=path,
            headers=error.headers,
            **error.extra,
        )
    if isinstance(error, StoreUnavailable):
        log.warning("store unavailable", error=str(error), path=path)
        return problem_response(
            503,
            "the store is unavailable; nothing was accepted, retry shortly",
            slug="store-unavailable",
            instance=path,
            headers={"Retry-After": "1"},
        )
    if isinstance(error, StoreRejected):
        if error.conflict:
            detail = "the request conflicts with an existing resource"
            return problem_response(409, detail, instance=path)
        detail = f"a value in the request cannot be stored: {error}"
        return problem_response(422, detail, slug="unstorable-value", instance=path)
    log.exception("unhandled error", path=path)
    return problem_response(
        500, "an unexpected error occurred; it has been logged with this request id", instance=path
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # FastAPI's "There was an error parsing the body", from the standard library's
            # parser running out of stack: say what was wrong, as for any malformed JSON.
            return problem_response(
                400, "the request body nests JSON too deeply to be read",
                slug="malformed-json", title="Malformed JSON", instance=request.url.path,
            )  # fmt: skip
        return problem_response(
            exc.status_code, detail, instance=request.url.path, headers=exc.headers
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(exc, request)

    async def on_error(request: Request, exc: Exception) -> Response:
        return exception_response(exc, request.url.path)

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for error_type in (Problem, StoreUnavailable, StoreRejected, Exception):
        app.add_exception_handler(error_type, on_error)
