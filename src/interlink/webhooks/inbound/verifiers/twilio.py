"""Twilio: ``X-Twilio-Signature: <base64 HMAC-SHA1 of the URL + sorted form parameters>``.

The signed string is the full public URL Twilio requested (query string included) followed, for
form posts, by every parameter name and value, names sorted, a repeated name contributing each of
its distinct values in sorted order (as Twilio's own ``RequestValidator`` builds it).

For JSON bodies Twilio appends ``bodySHA256=<hex SHA-256 of the body>`` to the URL's query string
and signs the URL alone; the body is then checked against that hash. A non-form body without
``bodySHA256`` is refused: nothing would cover it.

Because Twilio is inconsistent about explicit default ports, the signature is accepted over the
URL with and without its port (``https://h/x`` and ``https://h:443/x``), as Twilio's validator does.

Webhooks signed with a Twilio *SharedKey* name their algorithm in
``X-Twilio-Webhooks-Signature-Settings: key=...,algorithm=HMAC_SHA256``; the source's secret is
then that key's secret instead of the account auth token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qs, parse_qsl, urlsplit, urlunsplit

from interlink.webhooks.inbound.verifiers.base import (
    BODY_HASH_MISMATCH,
    FORM_MEDIA_TYPE,
    MALFORMED_HEADER,
    SIGNATURE_MISMATCH,
    UNSIGNED_BODY,
    InboundRequest,
    VerificationError,
    Verified,
    decode_base64,
    matches_any,
    parse_form,
    refuse_options,
    require_header,
    require_secret,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
BODY_HASH_PARAMETER = "bodySHA256"

_ALGORITHMS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _algorithm_name(settings_header: str | None) -> str:
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def _with_netloc(parts: SplitResult, hostport: str) -> str:
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{hostport}"))


def url_variants(url: str) -> tuple[str, ...]:
    """Return ``url`` without and with an explicit port, the two forms Twilio may have signed."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return (url,)
    hostport = parts.netloc.rpartition("@")[2]
    if port is not None:
        return (_with_netloc(parts, hostport.rsplit(":", 1)[0]), url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not hostport:
        return (url,)
    return (url, _with_netloc(parts, f"{hostport}:{default}"))


def signed_string(url: str, params: Mapping[str, list[str]]) -> str:
    """Build the string Twilio signs: the URL, then each sorted name with its sorted values."""
    pieces = [url]
    for name in sorted(params):
        for value in sorted(set(params[name])):
            pieces.append(name + value)
    return "".join(pieces)


def _form_params(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError(
            SIGNATURE_MISMATCH, "the twilio form body is not UTF-8, so it cannot match"
        ) from None
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def _event_type(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    if "MessageSid" in payload or "SmsSid" in payload:
        status = payload.get("MessageStatus") or payload.get("SmsStatus")
        return f"message.{status}" if status else "message"
    if "CallSid" in payload:
        status = payload.get("CallStatus")
        return f"call.{status}" if status else "call"
    kind = payload.get("type")
    return kind if isinstance(kind, str) else None


class TwilioVerifier:
    """Verifies Twilio webhooks (form posts and JSON bodies with ``bodySHA256``).

    Args:
        secret: the account auth token (or the SharedKey secret, see the module docstring).

    ``request.url`` must be the exact public URL configured at Twilio, query string included.

    The result's ``delivery_id`` is the ``I-Twilio-Idempotency-Token`` header, which Twilio keeps
    across retries of one webhook; without it, None (the caller hashes the body). The
    ``MessageSid``/``CallSid`` are deliberately not used: a status callback repeats the same sid
    for each new status, so keying on it would drop real events.
    ``event_type`` is ``message.<status>`` (e.g. ``message.received``, ``message.delivered``),
    ``call.<status>``, or a JSON body's ``type``; ``timestamp`` is None (Twilio signs none).
    """

    provider = "twilio"

    def __init__(self, secret: str) -> None:
        self._key = require_secret(secret, self.provider).encode("utf-8")

    @classmethod
    def from_options(cls, secret: str, options: Mapping[str, Any]) -> TwilioVerifier:
        """Build from a source's stored options; Twilio takes none."""
        refuse_options(cls.provider, options)
        return cls(secret)

    def verify(self, request: InboundRequest) -> Verified:
        """Check the signature (and body hash for JSON), then parse the body."""
        provided = decode_base64(require_header(request, SIGNATURE_HEADER), SIGNATURE_HEADER)
        algorithm = _algorithm_name(request.header(SIGNATURE_SETTINGS_HEADER))
        digestmod = _ALGORITHMS.get(algorithm)
        if digestmod is None:
            raise VerificationError(
                MALFORMED_HEADER,
                f"the {SIGNATURE_SETTINGS_HEADER} header names an unsupported algorithm",
            )

        query = parse_qs(urlsplit(request.url).query)
        body_hashes = query.get(BODY_HASH_PARAMETER)
        if body_hashes:
            params: dict[str, list[str]] = {}
        elif request.media_type == FORM_MEDIA_TYPE or not request.body:
            params = _form_params(request.body)
        else:
            raise VerificationError(
                UNSIGNED_BODY,
                f"a {request.media_type or 'untyped'} body needs {BODY_HASH_PARAMETER} "
                "in the URL to be covered by the signature",
            )

        expected = [
            hmac.new(self._key, signed_string(url, params).encode("utf-8"), digestmod).digest()
            for url in url_variants(request.url)
        ]
        if not matches_any(provided, expected):
            raise VerificationError(
                SIGNATURE_MISMATCH, f"the {SIGNATURE_HEADER} signature does not match the request"
            )

        if body_hashes:
            actual = hashlib.sha256(request.body).hexdigest().encode("ascii")
            if not hmac.compare_digest(actual, body_hashes[0].lower().encode("utf-8")):
                raise VerificationError(
                    BODY_HASH_MISMATCH, f"the body does not match {BODY_HASH_PARAMETER} in the URL"
                )
            payload: Any = request.json(self.provider)
        else:
            payload = parse_form(request.body, self.provider)

        return Verified(
            delivery_id=request.header(IDEMPOTENCY_HEADER) or None,
            event_type=_event_type(payload),
            timestamp=None,
            payload=payload,
        )
