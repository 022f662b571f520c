"""HubSpot, signature v3: ``X-HubSpot-Signature-v3`` with ``X-HubSpot-Request-Timestamp``.

As HubSpot documents ("Validating requests from HubSpot", v3): the signature is the base64
HMAC-SHA256, keyed by the app's client secret, of the UTF-8 string
``method + uri + body + timestamp``, where ``uri`` is the full URL HubSpot called with these
percent-encodings decoded first: ``%3A`` ``:``, ``%2F`` ``/``, ``%3F`` ``?``, ``%40`` ``@``,
``%21`` ``!``, ``%24`` ``$``, ``%27`` ``'``, ``%28`` ``(``, ``%29`` ``)``, ``%2A`` ``*``,
``%2C`` ``,``, ``%3B`` ``;`` (and no others), and ``timestamp`` is the header's value in
milliseconds. Requests older than 5 minutes are refused; so are ones more than 5 minutes ahead.
The older v1/v2 signatures HubSpot also sends are not accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from interlink.webhooks.inbound.verifiers.base import (
    SIGNATURE_MISMATCH,
    Clock,
    InboundRequest,
    ToleranceOptions,
    VerificationError,
    Verified,
    check_freshness,
    decode_base64,
    parse_options,
    parse_unix_milliseconds,
    require_header,
    require_secret,
)

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"

_DECODED_IN_URI = {
    "3A": ":",
    "2F": "/",
    "3F": "?",
    "40": "@",
    "21": "!",
    "24": "$",
    "27": "'",
    "28": "(",
    "29": ")",
    "2A": "*",
    "2C": ",",
    "3B": ";",
}
_ENCODED_IN_URI = re.compile("%(" + "|".join(_DECODED_IN_URI) + ")", re.IGNORECASE)


def normalize_uri(url: str) -> str:
    """Decode exactly the percent-encodings HubSpot's v3 instructions list, in one pass."""
    return _ENCODED_IN_URI.sub(lambda match: _DECODED_IN_URI[match.group(1).upper()], url)


def _batch_delivery_id(payload: Any) -> str | None:
    # HubSpot sends batches with no delivery id, and a retry differs from the first attempt only
    # in each event's attemptNumber; hashing the batch without it gives retries one id.
    if not isinstance(payload, list) or not payload:
        return None
    if not all(isinstance(event, dict) for event in payload):
        return None
    stable = [{k: v for k, v in event.items() if k != "attemptNumber"} for event in payload]
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return "hubspot-batch:" + hashlib.sha256(canonical).hexdigest()


def _batch_event_type(payload: Any) -> str | None:
    if not isinstance(payload, list):
        return None
    kinds = {event.get("subscriptionType") for event in payload if isinstance(event, dict)}
    if len(kinds) == 1:
        (kind,) = kinds
        return kind if isinstance(kind, str) else None
    return None


class HubSpotVerifier:
    """Verifies HubSpot requests signed with signature v3 (webhooks, workflow actions, cards).

    Args:
        secret: the app's client secret.
        tolerance: seconds the request timestamp may differ from now, either way (HubSpot: 5 min).
        now: the clock, Unix seconds.

    ``request.url`` must be the exact public URL configured at HubSpot, query string included.

    HubSpot posts a JSON array of up to 100 events and gives no delivery id, so ``delivery_id`` is
    ``hubspot-batch:<sha256>`` of the batch with each event's ``attemptNumber`` removed (retries
    of one batch share it); None for other bodies. ``event_type`` is the ``subscriptionType``
    shared by every event of the batch (e.g. ``contact.propertyChange``), None for a mixed batch.
    """

    provider = "hubspot"

    def __init__(self, secret: str, *, tolerance: float = 300.0, now: Clock = time.time) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")
        self._tolerance = tolerance
        self._now = now

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> HubSpotVerifier:
        """Build from a source's stored options: ``{"tolerance_seconds": 300}`` (optional)."""
        parsed = parse_options(ToleranceOptions, cls.provider, options)
        return cls(secret, tolerance=parsed.tolerance_seconds)

    def verify(self, request: InboundRequest) -> Verified:
        """Check timestamp and signature, then parse the JSON body (see :class:`Verifier`)."""
        provided = decode_base64(require_header(request, SIGNATURE_HEADER), SIGNATURE_HEADER)
        timestamp_text = require_header(request, TIMESTAMP_HEADER)
        sent_at_ms = parse_unix_milliseconds(timestamp_text, TIMESTAMP_HEADER)
        timestamp = check_freshness(
            sent_at_ms / 1000, self._now(), self._tolerance, TIMESTAMP_HEADER
        )

        signed = (
            (request.method + normalize_uri(request.url)).encode("utf-8")
            + request.body
            + timestamp_text.encode("ascii")
        )
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, provided):
            raise VerificationError(
                SIGNATURE_MISMATCH, f"the {SIGNATURE_HEADER} signature does not match the request"
            )

        payload = request.json(self.provider) if request.body else None
        return Verified(
            delivery_id=_batch_delivery_id(payload),
            event_type=_batch_event_type(payload),
            timestamp=timestamp,
            payload=payload,
        )
