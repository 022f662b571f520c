"""Standard Webhooks signatures: secrets, keys, signing and verification.

Interlink signs every outbound webhook the way the Standard Webhooks specification describes,
so that any Standard Webhooks or Svix verifier library accepts it. The signed content is
``{webhook-id}.{webhook-timestamp}.{body}`` and three headers travel with the body:

``webhook-id``
    the message id (``msg_...``), identical on every retry so receivers can deduplicate;
``webhook-timestamp``
    the attempt's integer unix time in seconds;
``webhook-signature``
    space-separated signatures, one per active secret or key (several during rotation).

Two schemes are supported, told apart by the prefix of the secret or key:

============================  =====================================  =======================
serialised form               what it holds                          signature
============================  =====================================  =======================
``whsec_<base64>``            24 to 64 random bytes                   ``v1,<base64 HMAC-SHA256>``
``whsk_<base64>``             Ed25519 private key (32-byte seed)      ``v1a,<base64 Ed25519>``
``whpk_<base64>``             Ed25519 public key (32 raw bytes)       verifies ``v1a``
============================  =====================================  =======================

Example::

    secret = generate_secret()                      # "whsec_..."
    signer = WebhookSigner([secret])
    body = b'{"type":"invoice.paid","timestamp":"2024-05-01T12:00:00Z","data":{}}'
    headers = signer.sign("msg_01J...", 1714564800, body)
    verify(headers, body, [secret], now=lambda: 1714564800)   # raises if not authentic

Every failure to verify raises :class:`WebhookVerificationError` with a precise message;
malformed secrets and keys raise :class:`ValueError` naming what is wrong (never the secret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "PUBLIC_KEY_PREFIX",
    "SECRET_PREFIX",
    "SIGNING_KEY_PREFIX",
    "WebhookSigner",
    "WebhookVerificationError",
    "WebhookVerifier",
    "generate_keypair",
    "generate_secret",
    "parse_public_key",
    "parse_secret",
    "parse_signing_key",
    "public_key_for",
    "sign_v1",
    "sign_v1a",
    "verify",
    "verify_v1a",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE_SECONDS = 300

_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64
# Longer than any plausible unix time; keeps int() away from pathological header values.
_MAX_TIMESTAMP_DIGITS = 15


class WebhookVerificationError(Exception):
    """A webhook is not authentic: a header is missing or malformed, its timestamp is outside
    the tolerance, or no signature in ``webhook-signature`` matches a trusted secret or key."""


# --- secrets and keys -------------------------------------------------------------------------


def _b64encode(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    text = text.strip()
    if not text:
        raise ValueError(f"{what} is empty")
    # Accept unpadded base64, as the reference libraries do.
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None


def _check_secret_length(raw: bytes) -> bytes:
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long, "
            f"got {len(raw)}"
        )
    return raw


def generate_secret(nbytes: int = 32) -> str:
    """Return a new symmetric signing secret, ``whsec_`` followed by base64 of random bytes.

    Args:
        nbytes: how many random bytes, from 24 (192 bits, the specification's minimum) to 64.

    Returns:
        The serialised secret, e.g. ``whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`` (24 bytes).

    Raises:
        ValueError: ``nbytes`` is outside 24..64.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError(f"nbytes must be an int, got {type(nbytes).__name__}")
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(
            f"nbytes must be between {MIN_SECRET_BYTES} and {MAX_SECRET_BYTES}, got {nbytes}"
        )
    return SECRET_PREFIX + _b64encode(secrets.token_bytes(nbytes))


def parse_secret(secret: str) -> bytes:
    """Decode a symmetric secret into the HMAC key bytes.

    Args:
        secret: ``whsec_<base64>`` or the bare base64 (padding optional), decoding to 24..64 bytes.

    Returns:
        The raw key bytes.

    Raises:
        ValueError: the text is an Ed25519 key rather than a secret, is not base64, or decodes
            to fewer than 24 or more than 64 bytes. The message never contains the secret.
    """
    if secret.startswith((SIGNING_KEY_PREFIX, PUBLIC_KEY_PREFIX)):
        raise ValueError(
            f"expected a {SECRET_PREFIX}... secret, got an Ed25519 key "
            f"({secret[: len(SIGNING_KEY_PREFIX)]}...)"
        )
    body = secret.removeprefix(SECRET_PREFIX)
    return _check_secret_length(_b64decode(body, "webhook secret"))


def generate_keypair() -> tuple[str, str]:
    """Return a new Ed25519 key pair for ``v1a`` signatures.

    Returns:
        ``(signing_key, public_key)``: ``whsk_`` + base64 of the 32-byte private seed, and
        ``whpk_`` + base64 of the 32-byte raw public key. Keep the first secret; hand the second
        to receivers.
    """
    private = Ed25519PrivateKey.generate()
    return (
        SIGNING_KEY_PREFIX + _b64encode(private.private_bytes_raw()),
        PUBLIC_KEY_PREFIX + _b64encode(private.public_key().public_bytes_raw()),
    )


def parse_signing_key(key: str) -> Ed25519PrivateKey:
    """Decode a ``whsk_`` signing key.

    The 32-byte seed is the canonical form; the 64-byte ``seed || public key`` form that
    libsodium-based tools write is accepted too, after checking that its halves belong together.

    Raises:
        ValueError: missing prefix, bad base64, wrong length, or mismatched halves.
    """
    if not key.startswith(SIGNING_KEY_PREFIX):
        raise ValueError(f"an Ed25519 signing key must start with {SIGNING_KEY_PREFIX!r}")
    raw = _b64decode(key[len(SIGNING_KEY_PREFIX) :], "Ed25519 signing key")
    if len(raw) == 2 * _ED25519_KEY_BYTES:
        raw, public = raw[:_ED25519_KEY_BYTES], raw[_ED25519_KEY_BYTES:]
        private = Ed25519PrivateKey.from_private_bytes(raw)
        if not hmac.compare_digest(private.public_key().public_bytes_raw(), public):
            raise ValueError("Ed25519 signing key: the public half does not match the seed")
        return private
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError(f"an Ed25519 signing key must be 32 bytes long, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def parse_public_key(key: str) -> Ed25519PublicKey:
    """Decode a ``whpk_`` public key (32 raw bytes, base64).

    Raises:
        ValueError: missing prefix, bad base64 or wrong length.
    """
    if not key.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError(f"an Ed25519 public key must start with {PUBLIC_KEY_PREFIX!r}")
    raw = _b64decode(key[len(PUBLIC_KEY_PREFIX) :], "Ed25519 public key")
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key must be 32 bytes long, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_for(signing_key: str) -> str:
    """Return the ``whpk_`` public key that belongs to a ``whsk_`` signing key."""
    public = parse_signing_key(signing_key).public_key()
    return PUBLIC_KEY_PREFIX + _b64encode(public.public_bytes_raw())


# --- signing ----------------------------------------------------------------------------------


def _check_msg_id(msg_id: str) -> None:
    # A "." in the id would let id "a.1" at time 2 sign the same bytes as id "a" at time 1;
    # spaces and control characters would corrupt the header line.
    if (
        not msg_id
        or not msg_id.isascii()
        or not msg_id.isprintable()
        or "." in msg_id
        or " " in msg_id
    ):
        raise ValueError("webhook-id must be non-empty printable ASCII without '.' or spaces")


def _signed_prefix(msg_id: str, timestamp: int) -> bytes:
    """``{msg_id}.{timestamp}.`` after checking both cannot shift the field boundaries."""
    _check_msg_id(msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"webhook-timestamp must be a non-negative int, got {timestamp!r}")
    return f"{msg_id}.{timestamp}.".encode("ascii")


def sign_v1(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the symmetric signature ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.

    Args:
        secret: the raw key bytes (see :func:`parse_secret`).
        msg_id: the ``webhook-id``.
        timestamp: the ``webhook-timestamp``, unix seconds.
        body: the exact bytes sent as the request body.

    Raises:
        ValueError: ``msg_id`` is empty or contains ``.``, a space or a control character, or
            ``timestamp`` is negative.

    For many messages under the same secret, :class:`WebhookSigner` is faster.
    """
    mac = hmac.new(secret, _signed_prefix(msg_id, timestamp), hashlib.sha256)
    mac.update(body)
    return "v1," + _b64encode(mac.digest())


def sign_v1a(private_key: str | Ed25519PrivateKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the asymmetric signature ``v1a,<base64 Ed25519 of "{id}.{timestamp}.{body}">``.

    Args:
        private_key: a ``whsk_`` key or an already parsed :class:`Ed25519PrivateKey`.
        msg_id, timestamp, body: as for :func:`sign_v1`.
    """
    if isinstance(private_key, str):
        private_key = parse_signing_key(private_key)
    return "v1a," + _b64encode(private_key.sign(_signed_prefix(msg_id, timestamp) + body))


def verify_v1a(
    public_key: str | Ed25519PublicKey,
    msg_id: str,
    timestamp: int,
    body: bytes,
    signature: str,
) -> bool:
    """Check one ``v1a`` signature.

    Args:
        public_key: a ``whpk_`` key or an already parsed :class:`Ed25519PublicKey`.
        msg_id, timestamp, body: as signed.
        signature: ``v1a,<base64>`` or the bare base64.

    Returns:
        True when the signature is valid for exactly these id, timestamp and body; False for a
        wrong or malformed signature (a malformed *key* raises ``ValueError``).
    """
    if isinstance(public_key, str):
        public_key = parse_public_key(public_key)
    version, sep, encoded = signature.partition(",")
    if sep and version != "v1a":
        return False
    raw = _decode_signature(encoded if sep else signature)
    if raw is None or len(raw) != _ED25519_SIGNATURE_BYTES:
        return False
    try:
        prefix = _signed_prefix(msg_id, timestamp)
    except ValueError:
        return False
    try:
        public_key.verify(raw, prefix + body)
    except InvalidSignature:
        return False
    return True


def _decode_signature(encoded: str) -> bytes | None:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


class WebhookSigner:
    """Signs outbound webhooks with every active secret or key of one endpoint.

    During a rotation an endpoint has two active secrets, the new and the old one; the signer
    puts one signature per secret into ``webhook-signature`` so receivers holding either verify.
    Keys are decoded and HMAC states precomputed once, so build one signer per endpoint (and
    secret set) and reuse it: :meth:`sign` does one HMAC per secret and nothing else.

    Args:
        keys: ``whsec_`` secrets (or their bare base64, or raw key bytes) for ``v1``
            signatures, and ``whsk_`` keys for ``v1a`` signatures, newest first. Duplicates are
            dropped.

    Raises:
        ValueError: ``keys`` is empty or holds a malformed secret or key.

    Example::

        signer = WebhookSigner([new_secret, old_secret])
        headers = signer.sign("msg_01J...", int(time.time()), body)
        # {"webhook-id": ..., "webhook-timestamp": ..., "webhook-signature": "v1,... v1,..."}
    """

    __slots__ = ("_ed25519", "_hmacs")

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        hmac_keys: list[bytes] = []
        ed25519_seeds: list[bytes] = []
        for key in keys:
            if isinstance(key, bytes | bytearray):
                raw = _check_secret_length(bytes(key))
                if raw not in hmac_keys:
                    hmac_keys.append(raw)
            elif key.startswith(SIGNING_KEY_PREFIX):
                seed = parse_signing_key(key).private_bytes_raw()
                if seed not in ed25519_seeds:
                    ed25519_seeds.append(seed)
            else:
                raw = parse_secret(key)
                if raw not in hmac_keys:
                    hmac_keys.append(raw)
        if not hmac_keys and not ed25519_seeds:
            raise ValueError("a webhook signer needs at least one secret or signing key")
        self._hmacs = tuple(hmac.new(raw, digestmod=hashlib.sha256) for raw in hmac_keys)
        self._ed25519 = tuple(Ed25519PrivateKey.from_private_bytes(s) for s in ed25519_seeds)

    def __repr__(self) -> str:
        # Never show key material.
        return f"WebhookSigner(v1={len(self._hmacs)}, v1a={len(self._ed25519)})"

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """Return the ``webhook-signature`` header value for one attempt.

        Raises:
            ValueError: as for :func:`sign_v1`.
        """
        prefix = _signed_prefix(msg_id, timestamp)
        if len(self._hmacs) == 1 and not self._ed25519:
            mac = self._hmacs[0].copy()
            mac.update(prefix)
            mac.update(body)
            return "v1," + _b64encode(mac.digest())
        parts: list[str] = []
        for base in self._hmacs:
            mac = base.copy()
            mac.update(prefix)
            mac.update(body)
            parts.append("v1," + _b64encode(mac.digest()))
        if self._ed25519:
            content = prefix + body
            parts.extend("v1a," + _b64encode(key.sign(content)) for key in self._ed25519)
        return " ".join(parts)

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """Return the three Standard Webhooks headers for one delivery attempt.

        Args:
            msg_id: the message id (``msg_...``), the same on every retry.
            timestamp: the attempt time, integer unix seconds.
            body: the exact bytes that will be sent.

        Returns:
            A new dict with ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.

        Raises:
            ValueError: as for :func:`sign_v1`.
        """
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(msg_id, timestamp, body),
        }


# --- verification -----------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # Plain dicts are case-sensitive; multidicts already answered above.
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = _header(headers, name)
    if not value:
        raise WebhookVerificationError(f"missing {name} header")
    return value


class WebhookVerifier:
    """Verifies Standard Webhooks requests against a set of trusted secrets and keys.

    Args:
        keys: ``whsec_`` secrets (or bare base64, or raw bytes) to check ``v1`` signatures,
            ``whpk_`` public keys (or ``whsk_`` signing keys, whose public half is used) to check
            ``v1a`` signatures. A request is authentic when any one signature matches any one key.
        tolerance: how many seconds ``webhook-timestamp`` may lie before or after the clock.
        clock: returns the current unix time; inject a fixed one in tests.

    Raises:
        ValueError: ``keys`` is empty or malformed, or ``tolerance`` is negative.

    Example::

        verifier = WebhookVerifier(["whsec_..."], tolerance=300)
        verifier.verify(request.headers, raw_body)    # raises WebhookVerificationError
    """

    __slots__ = ("_clock", "_hmac_keys", "_public_keys", "_tolerance")

    def __init__(
        self,
        keys: Iterable[str | bytes],
        *,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must not be negative, got {tolerance}")
        hmac_keys: list[bytes] = []
        public_keys: list[Ed25519PublicKey] = []
        for key in keys:
            if isinstance(key, bytes | bytearray):
                hmac_keys.append(_check_secret_length(bytes(key)))
            elif key.startswith(PUBLIC_KEY_PREFIX):
                public_keys.append(parse_public_key(key))
            elif key.startswith(SIGNING_KEY_PREFIX):
                public_keys.append(parse_signing_key(key).public_key())
            else:
                hmac_keys.append(parse_secret(key))
        if not hmac_keys and not public_keys:
            raise ValueError("a webhook verifier needs at least one secret or public key")
        self._hmac_keys = tuple(hmac_keys)
        self._public_keys = tuple(public_keys)
        self._tolerance = tolerance
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookVerifier(v1={len(self._hmac_keys)}, v1a={len(self._public_keys)})"

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check that a request was signed by a trusted secret or key, recently.

        Args:
            headers: the request headers; names are matched case-insensitively.
            body: the raw request body, exactly as received (never re-serialised JSON).

        Raises:
            WebhookVerificationError: with one of the messages ``missing webhook-id header``
                (likewise ``webhook-timestamp``, ``webhook-signature``), ``invalid
                webhook-timestamp``, ``webhook-timestamp too old``, ``webhook-timestamp too new``,
                ``invalid webhook-id`` or ``no matching signature``.
        """
        msg_id = _required_header(headers, "webhook-id")
        timestamp_text = _required_header(headers, "webhook-timestamp").strip()
        signatures = _required_header(headers, "webhook-signature")
        if (
            not timestamp_text.isascii()
            or not timestamp_text.isdigit()
            or len(timestamp_text) > _MAX_TIMESTAMP_DIGITS
        ):
            raise WebhookVerificationError("invalid webhook-timestamp")
        timestamp = int(timestamp_text)
        now = self._clock()
        if timestamp < now - self._tolerance:
            raise WebhookVerificationError("webhook-timestamp too old")
        if timestamp > now + self._tolerance:
            raise WebhookVerificationError("webhook-timestamp too new")

        try:
            _check_msg_id(msg_id)
        except ValueError:
            raise WebhookVerificationError("invalid webhook-id") from None
        # The timestamp text as received is what was signed: "0123" does not pass for "123".
        prefix = f"{msg_id}.{timestamp_text}.".encode("ascii")

        expected: list[bytes] | None = None
        for entry in signatures.split():
            version, sep, encoded = entry.partition(",")
            if not sep:
                continue
            if version == "v1" and self._hmac_keys:
                raw = _decode_signature(encoded)
                if raw is None:
                    continue
                if expected is None:
                    expected = [_hmac_digest(key, prefix, body) for key in self._hmac_keys]
                # Check every key without short-circuiting, to keep timing flat.
                matched = False
                for digest in expected:
                    matched |= hmac.compare_digest(digest, raw)
                if matched:
                    return
            elif version == "v1a" and self._public_keys:
                raw = _decode_signature(encoded)
                if raw is None or len(raw) != _ED25519_SIGNATURE_BYTES:
                    continue
                content = prefix + body
                for public_key in self._public_keys:
                    try:
                        public_key.verify(raw, content)
                    except InvalidSignature:
                        continue
                    return
        raise WebhookVerificationError("no matching signature")


def _hmac_digest(key: bytes, prefix: bytes, body: bytes) -> bytes:
    mac = hmac.new(key, prefix, hashlib.sha256)
    mac.update(body)
    return mac.digest()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str | bytes],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: Callable[[], float] = time.time,
) -> None:
    """Verify one Standard Webhooks request; a one-shot :class:`WebhookVerifier`.

    Args:
        headers: the request headers (case-insensitive names).
        body: the raw request body.
        secrets: trusted ``whsec_`` secrets and ``whpk_`` public keys (see
            :class:`WebhookVerifier`).
        tolerance: allowed clock difference in seconds (default 300).
        now: the clock, returning unix seconds.

    Raises:
        WebhookVerificationError: the request is not authentic (see
            :meth:`WebhookVerifier.verify` for the messages).
        ValueError: ``secrets`` is empty or malformed.

    Example::

        verify(headers, body, ["whsec_..."], now=lambda: 1714564800)
    """
    WebhookVerifier(secrets, tolerance=tolerance, clock=now).verify(headers, body)
