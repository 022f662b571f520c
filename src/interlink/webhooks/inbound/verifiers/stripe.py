"""Stripe: ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">``.

Stripe sends one ``v1`` entry per active endpoint secret (two while a secret is being rolled), and
may add ``v0`` entries, which are ignored. The key is the endpoint secret string itself
(``whsec_...``), used as UTF-8 bytes, not base64-decoded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from interlink.webhooks.inbound.verifiers.base import (
    MALFORMED_HEADER,
    SIGNATURE_MISMATCH,
    Clock,
    InboundRequest,
    PayloadError,
    ToleranceOptions,
    VerificationError,
    Verified,
    check_freshness,
    decode_hex,
    matches_any,
    parse_options,
    parse_unix_seconds,
    require_header,
    require_secret,
)

SIGNATURE_HEADER = "Stripe-Signature"


def _parse_signature_header(value: str) -> tuple[str, list[bytes]]:
    timestamps: list[str] = []
    signatures: list[bytes] = []
    for item in value.split(","):
        key, sep, part = item.strip().partition("=")
        if not sep:
            raise VerificationError(
                MALFORMED_HEADER, f"the {SIGNATURE_HEADER} header has an item without '='"
            )
        if key == "t":
            timestamps.append(part)
        elif key == "v1":
            signatures.append(decode_hex(part, SIGNATURE_HEADER))
    if len(timestamps) != 1:
        raise VerificationError(
            MALFORMED_HEADER, f"the {SIGNATURE_HEADER} header must carry exactly one t= timestamp"
        )
    if not signatures:
        raise VerificationError(
            MALFORMED_HEADER, f"the {SIGNATURE_HEADER} header carries no v1= signature"
        )
    return timestamps[0], signatures


class StripeVerifier:
    """Verifies Stripe webhook events.

    Args:
        secret: the endpoint's signing secret (``whsec_...``).
        tolerance: seconds the signed timestamp may differ from now, either way (Stripe's
            libraries use 300).
        now: the clock, Unix seconds.

    The result's ``delivery_id`` is the event ``id`` (``evt_...``), identical on every retry, and
    ``event_type`` is its ``type`` (e.g. ``invoice.paid``).

    Example::

        verified = StripeVerifier("whsec_...").verify(request)
        verified.event_type  # "invoice.paid"
    """

    provider = "stripe"

    def __init__(self, secret: str, *, tolerance: float = 300.0, now: Clock = time.time) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")
        self._tolerance = tolerance
        self._now = now

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> StripeVerifier:
        """Build from a source's stored options: ``{"tolerance_seconds": 300}`` (optional)."""
        parsed = parse_options(ToleranceOptions, cls.provider, options)
        return cls(secret, tolerance=parsed.tolerance_seconds)

    def verify(self, request: InboundRequest) -> Verified:
        """Check the signature and timestamp, then parse the event (see :class:`Verifier`)."""
        timestamp_text, signatures = _parse_signature_header(
            require_header(request, SIGNATURE_HEADER)
        )
        sent_at = parse_unix_seconds(timestamp_text, SIGNATURE_HEADER)
        timestamp = check_freshness(sent_at, self._now(), self._tolerance, SIGNATURE_HEADER)

        signed = timestamp_text.encode("ascii") + b"." + request.body
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        if not matches_any(expected, signatures):
            raise VerificationError(
                SIGNATURE_MISMATCH,
                f"no v1 signature in the {SIGNATURE_HEADER} header matches the body",
            )

        event = request.json(self.provider)
        if not isinstance(event, dict):
            raise PayloadError("the stripe body is not a JSON object")
        event_id = event.get("id")
        event_type = event.get("type")
        return Verified(
            delivery_id=event_id if isinstance(event_id, str) else None,
            event_type=event_type if isinstance(event_type, str) else None,
            timestamp=timestamp,
            payload=event,
        )
