"""The verifier port: what a request looks like, what verification returns, and how it fails.

Exceptions::

    VerificationError        the request is not authentic (answer 401); ``check`` says why
    └── PayloadError         authentic, but the body is not what the provider promised (answer 400)

Everything here works on the raw body bytes exactly as they arrived. Nothing in this package logs,
and no message ever contains a secret or the signature we expected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interlink import exact_json

Clock = Callable[[], float]
"""Returns the current Unix time in seconds; verifiers take one so tests can pin time."""

MISSING_HEADER = "missing_header"
MALFORMED_HEADER = "malformed_header"
STALE_TIMESTAMP = "stale_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
SIGNATURE_MISMATCH = "signature_mismatch"
BODY_HASH_MISMATCH = "body_hash_mismatch"
UNSIGNED_BODY = "unsigned_body"
MALFORMED_PAYLOAD = "malformed_payload"


class VerificationError(Exception):
    """A request failed verification.

    Attributes:
        check: a stable machine name of the check that failed: ``missing_header``,
            ``malformed_header``, ``stale_timestamp``, ``future_timestamp``,
            ``signature_mismatch``, ``body_hash_mismatch``, ``unsigned_body`` or
            ``malformed_payload`` (the last only on :class:`PayloadError`).
        message: a human sentence naming the header or field at fault. It never contains the
            secret or the expected signature.
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(check={self.check!r}, message={self.message!r})"


class PayloadError(VerificationError):
    """The signature is valid but the body cannot be parsed as the provider's format.

    Raised only after the signature has been checked, so the caller can answer 400 rather than
    401: the request is authentic, it is just unusable.
    """

    def __init__(self, message: str) -> None:
        super().__init__(MALFORMED_PAYLOAD, message)


def _lowercase_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({name.lower(): value for name, value in headers.items()})


@dataclass(frozen=True)
class InboundRequest:
    """One HTTP request as a provider sent it.

    Attributes:
        method: the HTTP method, e.g. ``"POST"``.
        url: the public URL the provider posted to, query string included, rebuilt by the
            caller from ``INTERLINK_PUBLIC_URL`` and ``path_qs`` (Twilio and HubSpot sign it).
        path_qs: the path and query string as received, e.g. ``/in/src_1?x=1``.
        headers: the request headers. They are copied with lower-cased names when the request
            is built, so ``request.headers["stripe-signature"]`` and
            ``request.header("Stripe-Signature")`` both work whatever case the server delivered.
            One value per name: if a header was repeated, pass the one the provider meant (the
            first).
        body: the raw body bytes, unparsed.
    """

    method: str
    url: str
    path_qs: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    _strict_json: tuple[Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _lowercase_headers(self.headers))

    def json(self, provider: str) -> Any:
        """The body parsed as JSON (as :func:`parse_json`, which names ``provider`` in its
        error), parsed once: a strict parse is kept, for :attr:`strict_json`."""
        if self._strict_json is not None:
            return self._strict_json[0]
        value, strict = _parse_json(self.body, provider)
        if strict:
            object.__setattr__(self, "_strict_json", (value,))
        return value

    @property
    def strict_json(self) -> tuple[Any] | None:
        """``(value,)`` once :meth:`json` has parsed the body as strict JSON (what ``orjson``
        reads: UTF-8 only, no NaN or infinity, no lone surrogate; integers kept exact by
        :mod:`interlink.exact_json`), so that the caller need not parse it again; else None."""
        return self._strict_json

    def header(self, name: str) -> str | None:
        """Return the value of header ``name`` (any case), or None when absent."""
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` without parameters, lower-cased; empty when absent."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class ChallengeResponse:
    """A body the route must answer with instead of its normal acknowledgement.

    Slack's ``url_verification`` handshake is the one case today.
    """

    body: bytes
    media_type: str = "text/plain"


@dataclass(frozen=True)
class Verified:
    """What a verifier learned from an authentic request.

    Attributes:
        delivery_id: the provider's id for this delivery or event, identical on retries, used to
            deduplicate; None when the provider gives none (the caller then uses
            :func:`body_digest`).
        event_type: the provider's event type, e.g. ``invoice.paid``, ``issues.opened``,
            ``orders/create``; None when the provider does not say.
        timestamp: the signed send time (timezone-aware UTC) for schemes that sign one, else None.
        payload: the parsed body: JSON (any shape) or a form as ``dict[str, str]``.
        challenge_response: when set, the route answers with it instead of its usual ack.
    """

    delivery_id: str | None
    event_type: str | None
    timestamp: datetime | None
    payload: Any
    challenge_response: ChallengeResponse | None = None


class Verifier(Protocol):
    """Checks that a request really comes from one provider account.

    Implementations take the shared secret, a clock (``now``) and a tolerance in their
    constructor, and hold no per-request state, so one instance serves concurrent requests.

    Example::

        verifier = StripeVerifier("whsec_...")
        try:
            verified = verifier.verify(request)
        except PayloadError:
            ...  # 400
        except VerificationError as exc:
            ...  # 401, exc.check says why
    """

    @property
    def provider(self) -> str:
        """The registry name of the provider, e.g. ``"stripe"``."""
        ...

    def verify(self, request: InboundRequest) -> Verified:
        """Return what the request says if it is authentic.

        Raises:
            PayloadError: the signature is valid but the body cannot be parsed.
            VerificationError: any other check failed.
        """
        ...


def body_digest(body: bytes) -> str:
    """Return the SHA-256 hex digest of ``body``: the delivery id when the provider gives none."""
    return hashlib.sha256(body).hexdigest()


# --- helpers shared by the verifiers -------------------------------------------------------------

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_UNIX_MILLISECONDS = re.compile(r"[0-9]{1,15}")


def require_header(request: InboundRequest, name: str) -> str:
    """Return header ``name`` stripped of surrounding spaces, or raise ``missing_header``."""
    value = request.header(name)
    if value is None or not value.strip():
        raise VerificationError(MISSING_HEADER, f"the {name} header is missing")
    return value.strip()


def parse_unix_seconds(value: str, source: str) -> int:
    """Parse a whole number of seconds since the epoch, or raise ``malformed_header``."""
    if not _UNIX_SECONDS.fullmatch(value):
        raise VerificationError(
            MALFORMED_HEADER,
            f"the timestamp in {source} is not a whole number of seconds (1 to 12 digits)",
        )
    return int(value)


def parse_unix_milliseconds(value: str, source: str) -> int:
    """Parse a whole number of milliseconds since the epoch, or raise ``malformed_header``."""
    if not _UNIX_MILLISECONDS.fullmatch(value):
        raise VerificationError(
            MALFORMED_HEADER,
            f"the timestamp in {source} is not a whole number of milliseconds (1 to 15 digits)",
        )
    return int(value)


def check_freshness(sent_at: float, now: float, tolerance: float, source: str) -> datetime:
    """Refuse a timestamp more than ``tolerance`` seconds away from ``now``; return it as UTC."""
    if sent_at < now - tolerance:
        raise VerificationError(
            STALE_TIMESTAMP,
            f"the timestamp in {source} is {now - sent_at:.0f}s old; the limit is {tolerance:g}s",
        )
    if sent_at > now + tolerance:
        raise VerificationError(
            FUTURE_TIMESTAMP,
            f"the timestamp in {source} is {sent_at - now:.0f}s in the future; "
            f"the limit is {tolerance:g}s",
        )
    return datetime.fromtimestamp(sent_at, tz=UTC)


def decode_hex(value: str, source: str) -> bytes:
    """Decode a hex signature, or raise ``malformed_header``."""
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise VerificationError(MALFORMED_HEADER, f"the signature in {source} is not hex") from None


def decode_base64(value: str, source: str) -> bytes:
    """Decode a standard base64 signature, or raise ``malformed_header``."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(
            MALFORMED_HEADER, f"the signature in {source} is not base64"
        ) from None


def matches_any(expected: bytes, candidates: list[bytes] | tuple[bytes, ...]) -> bool:
    """Compare ``expected`` with every candidate in constant time; True if any is equal."""
    found = False
    for candidate in candidates:
        # No early exit: the time taken does not depend on which candidate matched.
        found |= hmac.compare_digest(expected, candidate)
    return found


def parse_json(body: bytes, provider: str) -> Any:
    """Parse a JSON body, or raise :class:`PayloadError`."""
    return _parse_json(body, provider)[0]


def _parse_json(body: bytes, provider: str) -> tuple[Any, bool]:
    """The parsed body, and whether it is strict JSON (:func:`exact_json.loads` read it; else
    the standard library did). A body nested deeper than :data:`exact_json.MAX_DEPTH` is
    refused like a malformed one: its payload could not be written into its event."""
    try:
        value, strict = exact_json.loads(body), True
    except exact_json.JSONDecodeError:
        # orjson refuses a little more than the standard library (NaN, 1e400, UTF-16).
        try:
            value, strict = json.loads(body), False
        except (ValueError, UnicodeDecodeError):
            raise PayloadError(f"the {provider} body is not valid JSON") from None
        except RecursionError:  # deeper than the standard library reads
            raise _too_deep(provider) from None
    if exact_json.nests_deeper(body, value):
        raise _too_deep(provider)
    return value, strict


def _too_deep(provider: str) -> PayloadError:
    return PayloadError(
        f"the {provider} body nests JSON more than {exact_json.MAX_DEPTH} levels deep"
    )


def parse_form(body: bytes, provider: str) -> dict[str, str]:
    """Parse an ``application/x-www-form-urlencoded`` body (last value wins for a repeated name)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError(f"the {provider} form body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def is_json_media_type(media_type: str) -> bool:
    """True for ``application/json`` and ``application/*+json``."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

OptionsModel = TypeVar("OptionsModel", bound=BaseModel)


def parse_options(
    model: type[OptionsModel], provider: str, options: Mapping[str, Any]
) -> OptionsModel:
    """Validate ``options`` against ``model``; raise ValueError naming the offending field."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            if error["loc"]
            else error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        )
        raise ValueError(f"invalid {provider} options: {problems}") from None


class ToleranceOptions(BaseModel):
    """Options of the verifiers whose only setting is the timestamp tolerance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance_seconds: float = Field(default=300.0, gt=0)
    """How far (seconds) the signed timestamp may be from now, in either direction."""


def refuse_options(provider: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError if a provider without options was given some."""
    if options:
        names = ", ".join(sorted(options))
        raise ValueError(f"invalid {provider} options: {provider} takes no options (got {names})")


def require_secret(secret: str, provider: str) -> str:
    """Return ``secret`` or raise ValueError when it is empty."""
    if not secret or not secret.strip():
        raise ValueError(f"the {provider} signing secret must not be empty")
    return secret
