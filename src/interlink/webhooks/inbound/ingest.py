"""``POST /in/{source_id}``: the hot path where providers post their webhooks.

It is a raw ASGI app mounted ahead of FastAPI (``Capability.asgi_mounts``), so no routing,
dependency injection or request-context middleware runs per request: look the source up in the
in-memory cache, apply the rate limit, read the body incrementally up to the size limit, verify
the signature on the raw bytes, and hand the row to the group-commit writer. The answer is 2xx
only once the row is committed; an unavailable store answers 503 with ``Retry-After``.

Unknown and disabled sources answer 404 after the same work as a refused signature (reading the
body and computing an HMAC over it), so that timing does not tell them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from interlink.store.database import StoreUnavailable
from interlink.vault import VaultError
from interlink.webhooks.inbound.rejections import reject
from interlink.webhooks.inbound.replies import (
    ClientGone,
    answer_problem,
    read_body,
    unavailable,
)
from interlink.webhooks.inbound.rows import accepted_row
from interlink.webhooks.inbound.sources import IngestConfig
from interlink.webhooks.inbound.state import InboundState, inbound_state
from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    VerificationError,
    Verified,
    Verifier,
)
from interlink.webhooks.inbound.writer import PendingRow

__all__ = ["IngestApp", "ingest_app"]

log = structlog.get_logger("interlink.inbound")
_PREFIX = "/in/"
_SOURCE_ID = re.compile(r"src_[0-9A-HJKMNP-TV-Z]{26}")
_DECOY_KEY = secrets.token_bytes(32)
_SIGNATURE_MISMATCH = "signature_mismatch"
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _verify(verifiers: Sequence[Verifier], request: InboundRequest) -> Verified:
    last = len(verifiers) - 1
    for index, verifier in enumerate(verifiers):
        try:
            return verifier.verify(request)
        except VerificationError as error:
            # Only a mismatch may be cured by the previous secret (rotation grace period); a
            # PayloadError never is, since its signature already matched.
            if index == last or error.check != _SIGNATURE_MISMATCH:
                raise
    raise VerificationError(_SIGNATURE_MISMATCH, "no verifier is configured")


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class IngestApp:
    """The ASGI app of ``/in/``; ``scope["app"].state.runtime`` is the runtime it serves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id")
        try:
            await self._serve(scope, receive, send, request_id)
        except ClientGone:
            return
        except Exception:
            log.exception("unhandled error while ingesting", path=scope["path"][:100])
            await answer_problem(
                scope,
                send,
                request_id,
                500,
                "an unexpected error occurred; it has been logged with this request id",
            )

    async def _serve(self, scope: Scope, receive: Receive, send: Send, rid: str | None) -> None:
        path: str = scope["path"]
        if scope["method"] != "POST":
            detail = f"{scope['method']} is not allowed on {path[:100]}"
            await answer_problem(scope, send, rid, 405, detail, headers={"Allow": "POST"})
            return
        runtime = scope["app"].state.runtime
        state = inbound_state(runtime)
        source_id = path[len(_PREFIX) :] if path.startswith(_PREFIX) else ""
        try:
            config = await state.cache.get(source_id) if _SOURCE_ID.fullmatch(source_id) else None
        except (StoreUnavailable, VaultError) as error:
            log.warning("could not load a source", source_id=source_id, error=str(error))
            await unavailable(scope, send, rid)
            return
        if config is None or not config.enabled:
            decoy = await read_body(scope, receive, state.max_body_bytes) or b""
            hmac.compare_digest(hmac.new(_DECOY_KEY, decoy, hashlib.sha256).digest(), _DECOY_KEY)
            state.count("unknown", "not_found")
            detail = f"there is no webhook source {source_id[:60]}"
            await answer_problem(scope, send, rid, 404, detail, slug="unknown-source")
            return
        provider = config.provider
        rate = config.rate_per_second or state.rate_per_second
        burst = config.rate_burst or max(1, math.ceil(rate * 2))
        wait = state.limiter.acquire(source_id, rate, burst)
        if wait > 0:
            state.count(provider, "rate_limited")
            detail = f"source {source_id} accepts at most {rate:g} requests a second"
            retry_after = {"Retry-After": str(max(1, math.ceil(wait)))}
            await answer_problem(
                scope, send, rid, 429, detail, slug="rate-limited", headers=retry_after
            )
            return
        limit = config.max_body_bytes or state.max_body_bytes
        body = await read_body(scope, receive, limit)
        if body is None:
            state.count(provider, "too_large")
            detail = f"the body exceeds this source's limit of {limit} bytes"
            await answer_problem(scope, send, rid, 413, detail, slug="payload-too-large")
            return
        public_url: str = runtime.settings.effective_public_url
        await self._verify_and_store(state, public_url, config, scope, send, body, rid)

    async def _verify_and_store(
        self,
        state: InboundState,
        public_url: str,
        config: IngestConfig,
        scope: Scope,
        send: Send,
        body: bytes,
        rid: str | None,
    ) -> None:
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("utf-8", "replace")
        path_qs = f"{path}?{query}" if query else path
        raw_headers = scope["headers"]
        # The first of a repeated header is the one the provider meant.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(raw_headers)}
        inbound = InboundRequest("POST", public_url + path_qs, path_qs, headers, body)
        try:
            verified = _verify(config.verifiers, inbound)
        except VerificationError as error:
            await reject(state, config, scope, send, rid, path_qs, body, error)
            return
        if verified.challenge_response is not None:
            state.count(config.provider, "challenge")
            challenge = verified.challenge_response
            media = challenge.media_type.encode("latin-1")
            await _send(send, 200, challenge.body, [(b"content-type", media)])
            return
        content_type = headers.get("content-type")
        row = accepted_row(config, path_qs, content_type, raw_headers, body, verified)
        try:
            outcome = await state.writer.submit(PendingRow(row, parsed=inbound.strict_json))
        except StoreUnavailable:
            state.count(config.provider, "unavailable")
            await unavailable(scope, send, rid)
            return
        state.count(config.provider, outcome.status)
        ack = {"id": outcome.event_id, "status": outcome.status, "seen_count": outcome.seen_count}
        await _send(send, 200, orjson.dumps(ack), _JSON_HEADERS)


ingest_app = IngestApp()
