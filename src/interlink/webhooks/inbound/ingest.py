"""``POST /in/{source_id}``: the hot path where providers post their webhooks.

It runs as a bare request handler (no dependency injection, no body model): look the source up
in the in-memory cache, apply the rate limit, read the body incrementally up to the size limit,
verify the signature on the raw bytes, and hand the row to the group-commit writer. The answer is
2xx only once the row is committed; an unavailable store answers 503 with ``Retry-After``.

Unknown and disabled sources answer 404 after the same work as a refused signature (reading the
body and computing an HMAC over it), so that timing does not tell them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from typing import Any

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response

from interlink.api.errors import problem_response
from interlink.ids import new_id
from interlink.store.database import StoreUnavailable
from interlink.store.types import utcnow
from interlink.vault import VaultError
from interlink.webhooks.inbound.guards import redact_headers
from interlink.webhooks.inbound.sources import IngestConfig
from interlink.webhooks.inbound.state import InboundState, inbound_state
from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    PayloadError,
    VerificationError,
    Verified,
    body_digest,
)
from interlink.webhooks.inbound.writer import PendingRow, WriteOutcome

__all__ = ["handle_ingest"]

log = structlog.get_logger("interlink.inbound")
_SOURCE_ID = re.compile(r"src_[0-9A-HJKMNP-TV-Z]{26}")
_DECOY_KEY = secrets.token_bytes(32)
_SIGNATURE_MISMATCH = "signature_mismatch"
_KEY_LIMIT = 200


def _clip(value: str | None, limit: int = _KEY_LIMIT) -> str | None:
    if value is None:
        return None
    cleaned = value.replace("\x00", "")
    return cleaned if len(cleaned) <= limit else cleaned[:limit]


def _dedupe_key(verified: Verified, body: bytes) -> str:
    delivery = verified.delivery_id
    if not delivery:
        return "sha256:" + body_digest(body)
    if len(delivery) > 150 or "\x00" in delivery:
        return "id-sha256:" + hashlib.sha256(delivery.encode("utf-8", "replace")).hexdigest()
    return "id:" + delivery


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _verify(config: IngestConfig, request: InboundRequest) -> Verified:
    last = len(config.verifiers) - 1
    for index, verifier in enumerate(config.verifiers):
        try:
            return verifier.verify(request)
        except PayloadError:
            raise
        except VerificationError as error:
            # Only a mismatch may be cured by the previous secret (rotation grace period).
            if index == last or error.check != _SIGNATURE_MISMATCH:
                raise
    raise VerificationError(_SIGNATURE_MISMATCH, "no verifier is configured")


def _ack(outcome: WriteOutcome) -> Response:
    body = {"id": outcome.event_id, "status": outcome.status, "seen_count": outcome.seen_count}
    return Response(orjson.dumps(body), status_code=200, media_type="application/json")


def _unavailable(path: str) -> Response:
    return problem_response(
        503,
        "the store is unavailable; nothing was accepted, retry shortly",
        slug="store-unavailable",
        instance=path,
        headers={"Retry-After": "1"},
    )


def _row(
    config: IngestConfig, request: Request, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id("evt"),
        "tenant_id": config.tenant_id,
        "source_id": config.source_id,
        "method": request.method,
        "path_qs": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "content_type": _clip(request.headers.get("content-type")),
        "headers": headers,
        "body": body,
        "seen_count": 1,
        "suppressed_before": 0,
        "received_at": now,
        "last_seen_at": now,
        "attempts": 0,
        "replay_count": 0,
    }


class _Ingest:
    def __init__(self, state: InboundState, public_url: str, request: Request) -> None:
        self.state = state
        self.public_url = public_url
        self.request = request
        self.path = request.url.path

    def count(self, provider: str, outcome: str) -> None:
        self.state.metrics.requests.labels(provider, outcome).inc()

    async def not_found(self, source_id: str) -> Response:
        body = await _read_body(self.request, self.state.max_body_bytes) or b""
        hmac.compare_digest(hmac.new(_DECOY_KEY, body, hashlib.sha256).digest(), _DECOY_KEY)
        self.count("unknown", "not_found")
        return problem_response(
            404,
            f"there is no webhook source {source_id[:60]}",
            slug="unknown-source",
            instance=self.path[:100],
        )

    async def handle(self, source_id: str) -> Response:
        state = self.state
        try:
            config = await state.cache.get(source_id) if _SOURCE_ID.fullmatch(source_id) else None
        except (StoreUnavailable, VaultError) as error:
            log.warning("could not load a source", source_id=source_id, error=str(error))
            return _unavailable(self.path)
        if config is None or not config.enabled:
            return await self.not_found(source_id)
        provider = config.provider
        rate = config.rate_per_second or state.rate_per_second
        burst = config.rate_burst or max(1, math.ceil(rate * 2))
        wait = state.limiter.acquire(source_id, rate, burst)
        if wait > 0:
            self.count(provider, "rate_limited")
            return problem_response(
                429,
                f"source {source_id} accepts at most {rate:g} requests a second",
                slug="rate-limited",
                instance=self.path,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        limit = config.max_body_bytes or state.max_body_bytes
        body = await _read_body(self.request, limit)
        if body is None:
            self.count(provider, "too_large")
            return problem_response(
                413,
                f"the body exceeds this source's limit of {limit} bytes",
                slug="payload-too-large",
                instance=self.path,
            )
        return await self.verify_and_store(config, body)

    async def verify_and_store(self, config: IngestConfig, body: bytes) -> Response:
        request = self.request
        raw_headers = request.scope["headers"]
        url = f"{self.public_url}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        inbound = InboundRequest(
            request.method,
            url,
            request.url.path,
            {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(raw_headers)},
            body,
        )
        headers = redact_headers(raw_headers)
        row = _row(config, request, body, headers)
        try:
            verified = _verify(config, inbound)
        except VerificationError as error:
            return await self.reject(config, row, error)
        if verified.challenge_response is not None:
            self.count(config.provider, "challenge")
            challenge = verified.challenge_response
            return Response(challenge.body, media_type=challenge.media_type)
        row.update(
            status="accepted",
            verification="verified",
            failed_check=None,
            error=None,
            dedupe_key=_dedupe_key(verified, body),
            delivery_id=_clip(verified.delivery_id),
            event_type=_clip(verified.event_type),
            processing_status="pending",
        )
        try:
            outcome = await self.state.writer.submit(PendingRow(row))
        except StoreUnavailable:
            self.count(config.provider, "unavailable")
            return _unavailable(self.path)
        self.count(config.provider, outcome.status)
        return _ack(outcome)

    async def reject(
        self, config: IngestConfig, row: dict[str, Any], error: VerificationError
    ) -> Response:
        payload_error = isinstance(error, PayloadError)
        self.count(config.provider, "malformed" if payload_error else "refused")
        suppressed = self.state.sampler.admit(config.source_id)
        if suppressed is not None:
            row.update(
                status="rejected",
                verification="payload_error" if payload_error else "failed",
                failed_check=error.check,
                error=_clip(error.message, 500),
                dedupe_key=None,
                delivery_id=None,
                event_type=None,
                processing_status="skipped",
                suppressed_before=suppressed,
            )
            auth_failed = None
            if not payload_error:
                auth_failed = {
                    "source_id": config.source_id,
                    "provider": config.provider,
                    "received_event_id": row["id"],
                    "check": error.check,
                    "reason": error.message,
                    "suppressed_before": suppressed,
                }
            try:
                await self.state.writer.submit(PendingRow(row, auth_failed))
            except StoreUnavailable:
                log.warning("could not log a rejected webhook", source_id=config.source_id)
        if payload_error:
            return problem_response(
                400,
                error.message,
                slug="malformed-payload",
                title="Malformed payload",
                instance=self.path,
                check=error.check,
            )
        return problem_response(
            401,
            error.message,
            slug="webhook-verification-failed",
            title="Webhook verification failed",
            instance=self.path,
            check=error.check,
        )


async def handle_ingest(request: Request) -> Response:
    """The ASGI-level handler of ``POST /in/{source_id}``."""
    runtime = request.app.state.runtime
    state = inbound_state(runtime)
    ingest = _Ingest(state, runtime.settings.effective_public_url, request)
    source_id: str = request.path_params["source_id"]
    return await ingest.handle(source_id)
