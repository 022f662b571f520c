"""The ``inbound_events`` rows the ingest route hands to the writer: accepted and rejected."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from interlink.ids import new_id
from interlink.store.types import utcnow
from interlink.webhooks.inbound.guards import redact_headers
from interlink.webhooks.inbound.sources import IngestConfig
from interlink.webhooks.inbound.verifiers import Verified, body_digest

__all__ = [
    "HASHED_ID_PREFIX",
    "KEY_LIMIT",
    "accepted_row",
    "clip",
    "dedupe_key",
    "delivery_key",
    "rejected_row",
]

HASHED_ID_PREFIX = "id-sha256:"
KEY_LIMIT = 200  # characters kept of a delivery id, an event type, a content type


def clip(value: str | None, limit: int = KEY_LIMIT) -> str | None:
    """``value`` without NUL characters, at most ``limit`` characters long."""
    if value is None:
        return None
    cleaned = value.replace("\x00", "") if "\x00" in value else value
    return cleaned if len(cleaned) <= limit else cleaned[:limit]


def dedupe_key(verified: Verified, body: bytes) -> str:
    """The provider's delivery id (:func:`delivery_key`), or the body's SHA-256 when it gives
    none."""
    delivery = verified.delivery_id
    if not delivery:
        return "sha256:" + body_digest(body)
    return delivery_key(delivery)


def delivery_key(delivery: str) -> str:
    """The dedupe key of a delivery id: ``id:`` and the id, or ``id-sha256:`` and its digest
    when it is long or holds NUL characters (then the stored ``delivery_id`` may be clipped or
    cleaned, and only its digest finds the key)."""
    if len(delivery) > 150 or "\x00" in delivery:
        return HASHED_ID_PREFIX + hashlib.sha256(delivery.encode("utf-8", "replace")).hexdigest()
    return "id:" + delivery


def _base(
    config: IngestConfig,
    path_qs: str,
    content_type: str | None,
    raw_headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id("evt"),
        "tenant_id": config.tenant_id,
        "source_id": config.source_id,
        "method": "POST",
        "path_qs": path_qs,
        "content_type": clip(content_type),
        "headers": redact_headers(raw_headers),
        "body": body,
        "seen_count": 1,
        "suppressed_before": 0,
        "received_at": now,
        "last_seen_at": now,
        "attempts": 0,
        "replay_count": 0,
    }


def accepted_row(
    config: IngestConfig,
    path_qs: str,
    content_type: str | None,
    raw_headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    verified: Verified,
) -> dict[str, Any]:
    """The row of an authentic request, to be deduplicated and processed."""
    row = _base(config, path_qs, content_type, raw_headers, body)
    row.update(
        status="accepted",
        verification="verified",
        failed_check=None,
        error=None,
        dedupe_key=dedupe_key(verified, body),
        delivery_id=clip(verified.delivery_id),
        event_type=clip(verified.event_type),
        processing_status="pending",
    )
    return row


def rejected_row(
    config: IngestConfig,
    path_qs: str,
    content_type: str | None,
    raw_headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    *,
    verification: str,
    check: str,
    message: str,
    suppressed_before: int,
) -> dict[str, Any]:
    """The row of a refused request, kept in the log and never processed."""
    row = _base(config, path_qs, content_type, raw_headers, body)
    row.update(
        status="rejected",
        verification=verification,
        failed_check=check,
        error=clip(message, 500),
        dedupe_key=None,
        delivery_id=None,
        event_type=None,
        processing_status="skipped",
        suppressed_before=suppressed_before,
    )
    return row
