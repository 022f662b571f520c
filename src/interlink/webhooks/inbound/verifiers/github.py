"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

GitHub signs no timestamp, so there is no replay window: deduplication by ``X-GitHub-Delivery``
(kept on redelivery) is the defence. The legacy SHA-1 ``X-Hub-Signature`` header is not accepted.
Webhooks configured with content type ``application/x-www-form-urlencoded`` carry the JSON in a
``payload`` form field; both content types are understood.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from interlink.webhooks.inbound.verifiers.base import (
    FORM_MEDIA_TYPE,
    MALFORMED_HEADER,
    SIGNATURE_MISMATCH,
    InboundRequest,
    PayloadError,
    VerificationError,
    Verified,
    decode_hex,
    parse_form,
    parse_json,
    refuse_options,
    require_header,
    require_secret,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADER = "X-GitHub-Delivery"
EVENT_HEADER = "X-GitHub-Event"
_PREFIX = "sha256="


class GitHubVerifier:
    """Verifies GitHub webhook deliveries.

    Args:
        secret: the webhook's secret.

    The result's ``delivery_id`` is ``X-GitHub-Delivery``; ``event_type`` is ``X-GitHub-Event``,
    followed by ``.{action}`` when the payload has an ``action`` (e.g. ``issues.opened``);
    ``timestamp`` is None because GitHub signs none.
    """

    provider = "github"

    def __init__(self, secret: str) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> GitHubVerifier:
        """Build from a source's stored options; GitHub takes none."""
        refuse_options(cls.provider, options)
        return cls(secret)

    def verify(self, request: InboundRequest) -> Verified:
        """Check the signature, then parse the payload (see :class:`Verifier`)."""
        header = require_header(request, SIGNATURE_HEADER)
        if not header.startswith(_PREFIX):
            raise VerificationError(
                MALFORMED_HEADER, f"the {SIGNATURE_HEADER} header does not start with {_PREFIX!r}"
            )
        provided = decode_hex(header.removeprefix(_PREFIX), SIGNATURE_HEADER)
        expected = hmac.new(self._key, request.body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, provided):
            raise VerificationError(
                SIGNATURE_MISMATCH, f"the {SIGNATURE_HEADER} signature does not match the body"
            )

        payload = self._parse_payload(request)
        event = request.header(EVENT_HEADER)
        action = payload.get("action") if isinstance(payload, dict) else None
        if event and isinstance(action, str) and action:
            event = f"{event}.{action}"
        return Verified(
            delivery_id=request.header(DELIVERY_HEADER) or None,
            event_type=event or None,
            timestamp=None,
            payload=payload,
        )

    def _parse_payload(self, request: InboundRequest) -> Any:
        if request.media_type == FORM_MEDIA_TYPE:
            form = parse_form(request.body, self.provider)
            if "payload" not in form:
                raise PayloadError("the github form body has no 'payload' field")
            return parse_json(form["payload"].encode("utf-8"), self.provider)
        return request.json(self.provider)
