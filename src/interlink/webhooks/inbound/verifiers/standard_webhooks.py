"""Standard Webhooks (and Svix, the same scheme under ``svix-`` header names).

Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: a
space-separated list of ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (several during a
secret rotation; other versions such as ``v1a`` are skipped). The key is the base64 part of a
``whsec_<base64>`` secret; a bare base64 secret is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any, Literal

from interlink.webhooks.inbound.verifiers.base import (
    MALFORMED_HEADER,
    SIGNATURE_MISMATCH,
    Clock,
    InboundRequest,
    ToleranceOptions,
    VerificationError,
    Verified,
    check_freshness,
    matches_any,
    parse_options,
    parse_unix_seconds,
    require_header,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
HeaderPrefix = Literal["webhook", "svix"]
_PROVIDER_NAMES: dict[HeaderPrefix, str] = {"webhook": "standard-webhooks", "svix": "svix"}


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_<base64>`` (or bare base64) secret.

    Raises:
        ValueError: the secret is empty or not base64.
    """
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    # Some senders drop the base64 padding; restore it rather than refuse the secret.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not base64 (expected whsec_<base64>)") from None
    if not key:
        raise ValueError("the signing secret must not be empty")
    return key


def _v1_signatures(value: str, source: str) -> list[bytes]:
    signatures: list[bytes] = []
    for entry in value.split():
        version, sep, encoded = entry.partition(",")
        if not sep:
            raise VerificationError(
                MALFORMED_HEADER, f"the {source} header has an entry without a version"
            )
        if version != "v1":
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise VerificationError(
                MALFORMED_HEADER, f"a v1 signature in the {source} header is not base64"
            ) from None
    if not signatures:
        raise VerificationError(MALFORMED_HEADER, f"the {source} header carries no v1 signature")
    return signatures


class StandardWebhooksVerifier:
    """Verifies Standard Webhooks senders, or Svix ones with ``header_prefix="svix"``.

    Args:
        secret: ``whsec_<base64>`` or the bare base64 key.
        header_prefix: ``"webhook"`` (``webhook-id``, ...; provider ``standard-webhooks``) or
            ``"svix"`` (``svix-id``, ...; provider ``svix``).
        tolerance: seconds the timestamp may differ from now, either way (the spec: 5 min).
        now: the clock, Unix seconds.

    Raises:
        ValueError: the secret is not valid base64.

    The result's ``delivery_id`` is the message id header (the same on every retry);
    ``event_type`` is the body's ``type`` when it is a JSON object with one.
    """

    def __init__(
        self,
        secret: str,
        *,
        header_prefix: HeaderPrefix = "webhook",
        tolerance: float = 300.0,
        now: Clock = time.time,
    ) -> None:
        if header_prefix not in _PROVIDER_NAMES:
            raise ValueError(f"header_prefix must be 'webhook' or 'svix', not {header_prefix!r}")
        self.provider = _PROVIDER_NAMES[header_prefix]
        try:
            self._key = decode_secret(secret)
        except ValueError as exc:
            raise ValueError(f"invalid {self.provider} secret: {exc}") from None
        self._id_header = f"{header_prefix}-id"
        self._timestamp_header = f"{header_prefix}-timestamp"
        self._signature_header = f"{header_prefix}-signature"
        self._tolerance = tolerance
        self._now = now

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> StandardWebhooksVerifier:
        """Build a ``standard-webhooks`` verifier: ``{"tolerance_seconds": 300}`` (optional)."""
        parsed = parse_options(ToleranceOptions, "standard-webhooks", options)
        return cls(secret, header_prefix="webhook", tolerance=parsed.tolerance_seconds)

    @classmethod
    def svix_from_options(cls, secret: str, options: Mapping[str, Any]) -> StandardWebhooksVerifier:
        """Build a ``svix`` verifier: ``{"tolerance_seconds": 300}`` (optional)."""
        parsed = parse_options(ToleranceOptions, "svix", options)
        return cls(secret, header_prefix="svix", tolerance=parsed.tolerance_seconds)

    def verify(self, request: InboundRequest) -> Verified:
        """Check timestamp and signatures, then parse the JSON body (see :class:`Verifier`)."""
        message_id = require_header(request, self._id_header)
        timestamp_text = require_header(request, self._timestamp_header)
        signatures = _v1_signatures(
            require_header(request, self._signature_header), self._signature_header
        )
        sent_at = parse_unix_seconds(timestamp_text, self._timestamp_header)
        timestamp = check_freshness(sent_at, self._now(), self._tolerance, self._timestamp_header)

        signed = f"{message_id}.{timestamp_text}.".encode() + request.body
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        if not matches_any(expected, signatures):
            raise VerificationError(
                SIGNATURE_MISMATCH,
                f"no v1 signature in the {self._signature_header} header matches the body",
            )

        payload = request.json(self.provider)
        event_type = payload.get("type") if isinstance(payload, dict) else None
        return Verified(
            delivery_id=message_id,
            event_type=event_type if isinstance(event_type, str) else None,
            timestamp=timestamp,
            payload=payload,
        )
