"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>``, keyed by the app secret.

Shopify signs no timestamp; ``X-Shopify-Triggered-At`` is unsigned and so not checked.
Deduplication uses ``X-Shopify-Webhook-Id`` (kept on retries of one delivery), falling back to
``X-Shopify-Event-Id`` (shared by every subscription's delivery of one event).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from interlink.webhooks.inbound.verifiers.base import (
    SIGNATURE_MISMATCH,
    InboundRequest,
    VerificationError,
    Verified,
    decode_base64,
    refuse_options,
    require_header,
    require_secret,
)

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"
TOPIC_HEADER = "X-Shopify-Topic"


class ShopifyVerifier:
    """Verifies Shopify webhooks.

    Args:
        secret: the app's client secret (or the store's webhook signing key for webhooks created
            in the Shopify admin).

    The result's ``delivery_id`` is ``X-Shopify-Webhook-Id`` (else ``X-Shopify-Event-Id``);
    ``event_type`` is ``X-Shopify-Topic`` (e.g. ``orders/create``); ``timestamp`` is None.
    """

    provider = "shopify"

    def __init__(self, secret: str) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> ShopifyVerifier:
        """Build from a source's stored options; Shopify takes none."""
        refuse_options(cls.provider, options)
        return cls(secret)

    def verify(self, request: InboundRequest) -> Verified:
        """Check the signature, then parse the JSON body (see :class:`Verifier`)."""
        provided = decode_base64(require_header(request, SIGNATURE_HEADER), SIGNATURE_HEADER)
        expected = hmac.new(self._key, request.body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, provided):
            raise VerificationError(
                SIGNATURE_MISMATCH, f"the {SIGNATURE_HEADER} signature does not match the body"
            )
        return Verified(
            delivery_id=(
                request.header(WEBHOOK_ID_HEADER) or request.header(EVENT_ID_HEADER) or None
            ),
            event_type=request.header(TOPIC_HEADER) or None,
            timestamp=None,
            payload=request.json(self.provider),
        )
