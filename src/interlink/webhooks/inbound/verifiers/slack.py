"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{body}">``.

Three body shapes arrive at one request URL:

* Events API: JSON. ``url_verification`` is answered with its ``challenge`` (as text/plain, one
  of the forms Slack documents); ``event_callback`` carries ``event_id`` for deduplication.
* Interactivity (buttons, modals, shortcuts): a form whose ``payload`` field is JSON.
* Slash commands: a plain form (``command``, ``text``, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interlink.webhooks.inbound.verifiers.base import (
    FORM_MEDIA_TYPE,
    MALFORMED_HEADER,
    SIGNATURE_MISMATCH,
    ChallengeResponse,
    Clock,
    InboundRequest,
    PayloadError,
    ToleranceOptions,
    VerificationError,
    Verified,
    check_freshness,
    decode_hex,
    parse_form,
    parse_json,
    parse_options,
    parse_unix_seconds,
    require_header,
    require_secret,
)

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
_PREFIX = "v0="


class SlackVerifier:
    """Verifies requests from a Slack app (Events API, interactivity, slash commands).

    Args:
        secret: the app's signing secret.
        tolerance: seconds the request timestamp may differ from now, either way (Slack: 5 min).
        now: the clock, Unix seconds.

    The result's ``delivery_id`` is the Events API ``event_id`` when present, else None.
    ``event_type`` is the inner ``event.type`` for ``event_callback`` (e.g. ``app_mention``),
    the payload ``type`` for interactivity (e.g. ``block_actions``), ``slash_command`` for slash
    commands, and the outer ``type`` otherwise (e.g. ``url_verification``).
    """

    provider = "slack"

    def __init__(self, secret: str, *, tolerance: float = 300.0, now: Clock = time.time) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")
        self._tolerance = tolerance
        self._now = now

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> SlackVerifier:
        """Build from a source's stored options: ``{"tolerance_seconds": 300}`` (optional)."""
        parsed = parse_options(ToleranceOptions, cls.provider, options)
        return cls(secret, tolerance=parsed.tolerance_seconds)

    def verify(self, request: InboundRequest) -> Verified:
        """Check timestamp and signature, then parse the body (see :class:`Verifier`)."""
        header = require_header(request, SIGNATURE_HEADER)
        timestamp_text = require_header(request, TIMESTAMP_HEADER)
        if not header.startswith(_PREFIX):
            raise VerificationError(
                MALFORMED_HEADER, f"the {SIGNATURE_HEADER} header does not start with {_PREFIX!r}"
            )
        provided = decode_hex(header.removeprefix(_PREFIX), SIGNATURE_HEADER)
        sent_at = parse_unix_seconds(timestamp_text, TIMESTAMP_HEADER)
        timestamp = check_freshness(sent_at, self._now(), self._tolerance, TIMESTAMP_HEADER)

        signed = b"v0:" + timestamp_text.encode("ascii") + b":" + request.body
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, provided):
            raise VerificationError(
                SIGNATURE_MISMATCH, f"the {SIGNATURE_HEADER} signature does not match the body"
            )

        if request.media_type == FORM_MEDIA_TYPE:
            return self._verified_form(request, timestamp)
        return self._verified_event(request, timestamp)

    def _verified_event(self, request: InboundRequest, timestamp: datetime) -> Verified:
        body = request.json(self.provider)
        if not isinstance(body, dict):
            raise PayloadError("the slack body is not a JSON object")
        outer_type = body.get("type")
        event_id = body.get("event_id")
        event_type = outer_type if isinstance(outer_type, str) else None
        challenge: ChallengeResponse | None = None
        if outer_type == "url_verification":
            value = body.get("challenge")
            if not isinstance(value, str):
                raise PayloadError("the slack url_verification body has no 'challenge' string")
            challenge = ChallengeResponse(body=value.encode("utf-8"), media_type="text/plain")
        elif outer_type == "event_callback":
            inner = body.get("event")
            inner_type = inner.get("type") if isinstance(inner, dict) else None
            if isinstance(inner_type, str):
                event_type = inner_type
        return Verified(
            delivery_id=event_id if isinstance(event_id, str) and event_id else None,
            event_type=event_type,
            timestamp=timestamp,
            payload=body,
            challenge_response=challenge,
        )

    def _verified_form(self, request: InboundRequest, timestamp: datetime) -> Verified:
        form = parse_form(request.body, self.provider)
        if "payload" not in form:
            return Verified(
                delivery_id=None, event_type="slash_command", timestamp=timestamp, payload=form
            )
        payload = parse_json(form["payload"].encode("utf-8"), self.provider)
        kind = payload.get("type") if isinstance(payload, dict) else None
        return Verified(
            delivery_id=None,
            event_type=kind if isinstance(kind, str) else None,
            timestamp=timestamp,
            payload=payload,
        )
