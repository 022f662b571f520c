"""Generic HMAC: for senders that sign the body (or ``"{timestamp}.{body}"``) with a shared secret.

Everything is configured per source, for example a sender that puts
``X-Signature: sha256=<hex>`` over ``"{X-Timestamp}.{body}"``::

    {
        "header": "X-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "sha256=",
        "signed_content": "timestamp.body",
        "timestamp_header": "X-Timestamp",
        "id_header": "X-Delivery-Id"
    }
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interlink.webhooks.inbound.verifiers.base import (
    FORM_MEDIA_TYPE,
    MALFORMED_HEADER,
    SIGNATURE_MISMATCH,
    Clock,
    InboundRequest,
    PayloadError,
    VerificationError,
    Verified,
    check_freshness,
    decode_base64,
    decode_hex,
    is_json_media_type,
    parse_form,
    parse_options,
    parse_unix_seconds,
    require_header,
    require_secret,
)

_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


class HmacOptions(BaseModel):
    """How a generic HMAC sender signs its requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: str = Field(min_length=1, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """The header carrying the signature, e.g. ``X-Signature``."""
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    """The HMAC hash function."""
    encoding: Literal["hex", "base64"] = "hex"
    """How the signature is written in the header."""
    prefix: str = ""
    """Text before the signature in the header, e.g. ``sha256=``."""
    signed_content: Literal["body", "timestamp.body"] = "body"
    """What is signed: the body alone, or ``"{timestamp}.{body}"``."""
    timestamp_header: str | None = Field(
        default=None, min_length=1, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )
    """The header with the Unix-seconds timestamp; required with ``timestamp.body``."""
    tolerance_seconds: float = Field(default=300.0, gt=0)
    """How far the timestamp may be from now, in either direction."""
    id_header: str | None = None
    """A header with the sender's delivery id, used to deduplicate."""
    event_type_header: str | None = None
    """A header naming the event type."""

    @model_validator(mode="after")
    def _timestamp_header_goes_with_signed_content(self) -> HmacOptions:
        if self.signed_content == "timestamp.body" and self.timestamp_header is None:
            raise ValueError("timestamp_header is required when signed_content is 'timestamp.body'")
        if self.signed_content == "body" and self.timestamp_header is not None:
            raise ValueError(
                "timestamp_header is only used when signed_content is 'timestamp.body' "
                "(an unsigned timestamp protects nothing)"
            )
        return self


class HmacVerifier:
    """Verifies requests from any sender using a shared-secret HMAC (see :class:`HmacOptions`).

    Args:
        secret: the shared secret, used as UTF-8 bytes.
        options: how the sender signs.
        now: the clock, Unix seconds.

    The payload is parsed as JSON for a JSON content type (a parse failure raises
    :class:`PayloadError`), as a form for ``application/x-www-form-urlencoded``, and otherwise as
    JSON when it happens to be JSON, else None (the caller keeps the raw body either way).
    """

    provider = "hmac"

    def __init__(self, secret: str, options: HmacOptions, *, now: Clock = time.time) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")
        self._options = options
        self._digestmod = _DIGESTS[options.algorithm]
        self._now = now

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> HmacVerifier:
        """Build from a source's stored options (validated as :class:`HmacOptions`).

        Raises:
            ValueError: an option is missing or invalid; the message names the field.
        """
        return cls(secret, parse_options(HmacOptions, cls.provider, options))

    def verify(self, request: InboundRequest) -> Verified:
        """Check timestamp (if signed) and signature, then parse the body."""
        options = self._options
        provided = self._provided_signature(request)

        timestamp: datetime | None = None
        signed = request.body
        if options.timestamp_header is not None:
            timestamp_text = require_header(request, options.timestamp_header)
            sent_at = parse_unix_seconds(timestamp_text, options.timestamp_header)
            timestamp = check_freshness(
                sent_at, self._now(), options.tolerance_seconds, options.timestamp_header
            )
            signed = timestamp_text.encode("ascii") + b"." + request.body

        expected = hmac.new(self._key, signed, self._digestmod).digest()
        if not hmac.compare_digest(expected, provided):
            raise VerificationError(
                SIGNATURE_MISMATCH, f"the {options.header} signature does not match the body"
            )

        return Verified(
            delivery_id=self._optional_header(request, options.id_header),
            event_type=self._optional_header(request, options.event_type_header),
            timestamp=timestamp,
            payload=self._parse_payload(request),
        )

    def _provided_signature(self, request: InboundRequest) -> bytes:
        options = self._options
        header = require_header(request, options.header)
        if not header.startswith(options.prefix):
            raise VerificationError(
                MALFORMED_HEADER,
                f"the {options.header} header does not start with {options.prefix!r}",
            )
        value = header.removeprefix(options.prefix)
        if options.encoding == "hex":
            return decode_hex(value, options.header)
        return decode_base64(value, options.header)

    @staticmethod
    def _optional_header(request: InboundRequest, name: str | None) -> str | None:
        if name is None:
            return None
        return request.header(name) or None

    def _parse_payload(self, request: InboundRequest) -> Any:
        media_type = request.media_type
        if is_json_media_type(media_type):
            return request.json(self.provider)
        if media_type == FORM_MEDIA_TYPE:
            return parse_form(request.body, self.provider)
        try:
            return request.json(self.provider)
        except PayloadError:
            return None
