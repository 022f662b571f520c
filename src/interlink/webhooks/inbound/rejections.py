"""Refused ingest requests: counted, logged when the sampler admits them, answered 400 or 401.

A refused signature also emits ``auth.failed`` (through the writer, in the same transaction as
the log row); an authentic but unparseable body is answered 400 and kept as rejected.
"""

from __future__ import annotations

import structlog
from starlette.types import Scope, Send

from interlink.store.database import StoreUnavailable
from interlink.webhooks.inbound.replies import answer_problem
from interlink.webhooks.inbound.rows import rejected_row
from interlink.webhooks.inbound.sources import IngestConfig
from interlink.webhooks.inbound.state import InboundState
from interlink.webhooks.inbound.verifiers import PayloadError, VerificationError
from interlink.webhooks.inbound.writer import PendingRow

__all__ = ["reject"]

log = structlog.get_logger("interlink.inbound")


async def reject(
    state: InboundState,
    config: IngestConfig,
    scope: Scope,
    send: Send,
    request_id: str | None,
    path_qs: str,
    body: bytes,
    error: VerificationError,
) -> None:
    """Log (sampled) and answer a request that failed verification."""
    payload_error = isinstance(error, PayloadError)
    state.count(config.provider, "malformed" if payload_error else "refused")
    suppressed = state.sampler.admit(config.source_id)
    if suppressed is not None:
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        row = rejected_row(
            config,
            path_qs,
            content_type,
            scope["headers"],
            body,
            verification="payload_error" if payload_error else "failed",
            check=error.check,
            message=error.message,
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
            await state.writer.submit(PendingRow(row, auth_failed))
        except StoreUnavailable:
            log.warning("could not log a rejected webhook", source_id=config.source_id)
    if payload_error:
        await answer_problem(
            scope,
            send,
            request_id,
            400,
            error.message,
            slug="malformed-payload",
            title="Malformed payload",
            check=error.check,
        )
        return
    await answer_problem(
        scope,
        send,
        request_id,
        401,
        error.message,
        slug="webhook-verification-failed",
        title="Webhook verification failed",
        check=error.check,
    )
