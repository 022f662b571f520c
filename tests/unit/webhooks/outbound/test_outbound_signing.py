"""Standard Webhooks signing, checked against independent verifiers.

``standardwebhooks`` and ``svix`` verify what the signer produces (svix's Python verifier is
built on standardwebhooks, so a third, hand-independent check is the known-answer vector from
the Svix documentation); ``cryptography`` verifies ``v1a`` from the ``whpk_`` key alone.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks.webhooks as standard
import svix.webhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from interlink.webhooks.outbound.signing import (
    WebhookSigner,
    WebhookVerificationError,
    WebhookVerifier,
    generate_keypair,
    generate_secret,
    parse_public_key,
    parse_secret,
    parse_signing_key,
    public_key_for,
    sign_v1,
    sign_v1a,
    verify,
    verify_v1a,
)

BODY = b'{"type":"invoice.paid","timestamp":"2024-05-01T12:00:00Z","data":{"amount":1250}}'
MSG_ID = "msg_01JD3Q0Z8N6V6Q3X9T1W2Y4B5C"

# The example in Svix's and Standard Webhooks' documentation.
KNOWN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KNOWN_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KNOWN_TIMESTAMP = 1614265330
KNOWN_BODY = b'{"test": 2432232314}'
KNOWN_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _verifiers(secret: str) -> list[tuple[str, object]]:
    return [
        ("standardwebhooks", standard.Webhook(secret)),
        ("svix", svix.webhooks.Webhook(secret)),
    ]


def _library_accepts(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, bool]:
    outcome = {}
    for name, verifier in _verifiers(secret):
        try:
            verifier.verify(body, dict(headers))  # type: ignore[attr-defined]
        except Exception:
            outcome[name] = False
        else:
            outcome[name] = True
    return outcome


# --- secrets ----------------------------------------------------------------------------------


def test_generated_secret_is_prefixed_base64_of_32_random_bytes_by_default() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


@pytest.mark.parametrize("nbytes", [24, 48, 64])
def test_generated_secret_has_the_requested_length(nbytes: int) -> None:
    secret = generate_secret(nbytes)
    assert len(parse_secret(secret)) == nbytes


@pytest.mark.parametrize("nbytes", [0, 16, 23, 65, 512])
def test_generated_secret_length_outside_24_to_64_is_refused(nbytes: int) -> None:
    with pytest.raises(ValueError, match=f"between 24 and 64, got {nbytes}"):
        generate_secret(nbytes)


def test_generated_secret_length_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="nbytes must be an int"):
        generate_secret(True)
    with pytest.raises(TypeError, match="nbytes must be an int"):
        generate_secret(32.0)  # type: ignore[arg-type]


def test_parse_secret_accepts_prefixed_bare_and_unpadded_base64() -> None:
    raw = bytes(range(24, 24 + 25))  # 25 bytes: base64 needs padding
    encoded = base64.b64encode(raw).decode()
    assert encoded.endswith("=")
    assert parse_secret("whsec_" + encoded) == raw
    assert parse_secret(encoded) == raw
    assert parse_secret("whsec_" + encoded.rstrip("=")) == raw


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64 bytes long, got 23"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes long, got 65"),
        ("whsec_", "webhook secret is empty"),
        ("whsec_not*base64!", "not valid base64"),
        ("whsk_" + base64.b64encode(b"k" * 32).decode(), "got an Ed25519 key"),
        ("whpk_" + base64.b64encode(b"k" * 32).decode(), "got an Ed25519 key"),
    ],
)
def test_parse_secret_refuses_malformed_secrets_without_echoing_them(
    secret: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_secret(secret)
    body = secret.split("_", 1)[1]
    if body:
        assert body not in str(caught.value)


# --- v1 ---------------------------------------------------------------------------------------


def test_sign_v1_matches_the_published_example() -> None:
    signature = sign_v1(parse_secret(KNOWN_SECRET), KNOWN_ID, KNOWN_TIMESTAMP, KNOWN_BODY)
    assert signature == KNOWN_SIGNATURE


def test_signer_matches_the_published_example() -> None:
    headers = WebhookSigner([KNOWN_SECRET]).sign(KNOWN_ID, KNOWN_TIMESTAMP, KNOWN_BODY)
    assert headers == {
        "webhook-id": KNOWN_ID,
        "webhook-timestamp": str(KNOWN_TIMESTAMP),
        "webhook-signature": KNOWN_SIGNATURE,
    }


def test_signer_matches_standardwebhooks_own_signing() -> None:
    secret = generate_secret()
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    expected = standard.Webhook(secret).sign(MSG_ID, when, BODY.decode())
    signer = WebhookSigner([secret])
    assert signer.signature(MSG_ID, int(when.timestamp()), BODY) == expected


def test_both_libraries_verify_what_the_signer_sends() -> None:
    secret = generate_secret()
    headers = WebhookSigner([secret]).sign(MSG_ID, int(time.time()), BODY)
    assert _library_accepts(secret, BODY, headers) == {"standardwebhooks": True, "svix": True}


def test_both_libraries_accept_a_24_byte_and_a_64_byte_secret() -> None:
    for nbytes in (24, 64):
        secret = generate_secret(nbytes)
        headers = WebhookSigner([secret]).sign(MSG_ID, int(time.time()), BODY)
        assert all(_library_accepts(secret, BODY, headers).values())


def test_during_rotation_each_secret_alone_verifies() -> None:
    new, old = generate_secret(), generate_secret()
    headers = WebhookSigner([new, old]).sign(MSG_ID, int(time.time()), BODY)

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(signature.startswith("v1,") for signature in signatures)
    assert _library_accepts(new, BODY, headers) == {"standardwebhooks": True, "svix": True}
    assert _library_accepts(old, BODY, headers) == {"standardwebhooks": True, "svix": True}
    assert _library_accepts(generate_secret(), BODY, headers) == {
        "standardwebhooks": False,
        "svix": False,
    }


def test_signer_puts_the_newest_secret_first_and_drops_duplicates() -> None:
    new, old = generate_secret(), generate_secret()
    signer = WebhookSigner([new, old, new])
    signatures = signer.signature(MSG_ID, 1, BODY).split(" ")
    assert signatures == [
        sign_v1(parse_secret(new), MSG_ID, 1, BODY),
        sign_v1(parse_secret(old), MSG_ID, 1, BODY),
    ]


@pytest.mark.parametrize("part", ["body", "id", "timestamp"])
def test_tampering_with_body_id_or_timestamp_fails_everywhere(part: str) -> None:
    secret = generate_secret()
    now = int(time.time())
    headers = WebhookSigner([secret]).sign(MSG_ID, now, BODY)
    body = BODY
    if part == "body":
        body = BODY.replace(b"1250", b"9250")
    elif part == "id":
        headers["webhook-id"] = MSG_ID[:-1] + "D"
    else:
        headers["webhook-timestamp"] = str(now - 1)

    assert _library_accepts(secret, body, headers) == {"standardwebhooks": False, "svix": False}
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, body, [secret], now=lambda: now)


@pytest.mark.parametrize("msg_id", ["", "msg_a.b", "msg a", "msg_\r\nx", "msg_é"])
def test_signer_refuses_ids_that_could_shift_the_signed_fields(msg_id: str) -> None:
    signer = WebhookSigner([generate_secret()])
    with pytest.raises(ValueError, match="webhook-id must be"):
        signer.sign(msg_id, 1, BODY)


@pytest.mark.parametrize("timestamp", [-1, 1.5, True])
def test_signer_refuses_timestamps_that_are_not_unix_seconds(timestamp: object) -> None:
    with pytest.raises(ValueError, match="webhook-timestamp must be a non-negative int"):
        WebhookSigner([generate_secret()]).sign(MSG_ID, timestamp, BODY)  # type: ignore[arg-type]


def test_signer_needs_a_key_and_never_shows_it() -> None:
    with pytest.raises(ValueError, match="at least one secret or signing key"):
        WebhookSigner([])
    secret = generate_secret()
    text = repr(WebhookSigner([secret]))
    assert secret.removeprefix("whsec_") not in text
    assert text == "WebhookSigner(v1=1, v1a=0)"


def test_signer_accepts_raw_secret_bytes_with_the_same_length_rule() -> None:
    raw = bytes(range(32))
    secret = "whsec_" + base64.b64encode(raw).decode()
    assert WebhookSigner([raw]).signature(MSG_ID, 7, BODY) == WebhookSigner([secret]).signature(
        MSG_ID, 7, BODY
    )
    with pytest.raises(ValueError, match="got 8"):
        WebhookSigner([b"too-shrt"])


# --- v1a --------------------------------------------------------------------------------------


def _public_key_from_text(public_key: str) -> Ed25519PublicKey:
    assert public_key.startswith("whpk_")
    return Ed25519PublicKey.from_public_bytes(_b64(public_key.removeprefix("whpk_")))


def test_keypair_encodes_raw_ed25519_seed_and_public_key() -> None:
    signing_key, public_key = generate_keypair()
    assert signing_key.startswith("whsk_")
    seed = base64.b64decode(signing_key.removeprefix("whsk_"), validate=True)
    raw_public = base64.b64decode(public_key.removeprefix("whpk_"), validate=True)
    assert len(seed) == 32
    assert len(raw_public) == 32
    assert Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw() == raw_public
    assert public_key_for(signing_key) == public_key


def test_v1a_signature_verifies_with_cryptography_from_the_public_key_alone() -> None:
    signing_key, public_key = generate_keypair()
    signature = sign_v1a(signing_key, MSG_ID, 1714564800, BODY)

    version, encoded = signature.split(",")
    assert version == "v1a"
    raw = base64.b64decode(encoded, validate=True)
    key = _public_key_from_text(public_key)
    key.verify(raw, f"{MSG_ID}.1714564800.".encode() + BODY)  # raises if wrong
    with pytest.raises(InvalidSignature):
        key.verify(raw, f"{MSG_ID}.1714564801.".encode() + BODY)


def test_verify_v1a_accepts_the_right_content_only() -> None:
    signing_key, public_key = generate_keypair()
    signature = sign_v1a(signing_key, MSG_ID, 10, BODY)
    assert verify_v1a(public_key, MSG_ID, 10, BODY, signature)
    assert verify_v1a(public_key, MSG_ID, 10, BODY, signature.removeprefix("v1a,"))
    assert not verify_v1a(public_key, MSG_ID, 11, BODY, signature)
    assert not verify_v1a(public_key, MSG_ID, 10, BODY + b" ", signature)
    assert not verify_v1a(generate_keypair()[1], MSG_ID, 10, BODY, signature)
    assert not verify_v1a(public_key, MSG_ID, 10, BODY, "v1," + signature[4:])
    assert not verify_v1a(public_key, MSG_ID, 10, BODY, "v1a,!!not base64!!")


def test_signer_with_secret_and_keypair_satisfies_both_kinds_of_receiver() -> None:
    secret = generate_secret()
    signing_key, public_key = generate_keypair()
    now = int(time.time())
    headers = WebhookSigner([secret, signing_key]).sign(MSG_ID, now, BODY)

    v1, v1a = headers["webhook-signature"].split(" ")
    assert v1.startswith("v1,")
    assert v1a.startswith("v1a,")
    # HMAC receivers skip the v1a entry; Ed25519 receivers need only the public key.
    assert _library_accepts(secret, BODY, headers) == {"standardwebhooks": True, "svix": True}
    _public_key_from_text(public_key).verify(
        base64.b64decode(v1a.removeprefix("v1a,")), f"{MSG_ID}.{now}.".encode() + BODY
    )


def test_signing_key_in_64_byte_libsodium_form_is_accepted_if_consistent() -> None:
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    long_form = "whsk_" + base64.b64encode(seed + public).decode()
    assert parse_signing_key(long_form).private_bytes_raw() == seed

    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(ValueError, match="public half does not match"):
        parse_signing_key("whsk_" + base64.b64encode(seed + other).decode())


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_signing_key, "whsec_" + "A" * 43, "must start with 'whsk_'"),
        (parse_signing_key, "whsk_" + base64.b64encode(b"s" * 31).decode(), "32 bytes long"),
        (parse_public_key, "whsk_" + base64.b64encode(b"p" * 32).decode(), "start with 'whpk_'"),
        (parse_public_key, "whpk_" + base64.b64encode(b"p" * 33).decode(), "got 33"),
        (parse_public_key, "whpk_%%%", "not valid base64"),
    ],
)
def test_malformed_keys_are_refused(parse: object, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)  # type: ignore[operator]


# --- verification -----------------------------------------------------------------------------


NOW = 1_714_564_800


def _signed(secret: str, timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return WebhookSigner([secret]).sign(MSG_ID, timestamp, body)


def test_verify_accepts_what_standardwebhooks_signs() -> None:
    secret = generate_secret()
    signature = standard.Webhook(secret).sign(
        MSG_ID, datetime.fromtimestamp(NOW, tz=UTC), BODY.decode()
    )
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(NOW), "webhook-signature": signature}
    verify(headers, BODY, [secret], now=lambda: NOW)


def test_verify_matches_header_names_case_insensitively() -> None:
    secret = generate_secret()
    headers = {key.title(): value for key, value in _signed(secret).items()}
    assert "Webhook-Signature" in headers
    verify(headers, BODY, [secret], now=lambda: NOW)


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (-300, None),
        (300, None),
        (-301, "webhook-timestamp too old"),
        (301, "webhook-timestamp too new"),
    ],
)
def test_verify_tolerance_boundaries(offset: int, error: str | None) -> None:
    secret = generate_secret()
    headers = _signed(secret, timestamp=NOW + offset)
    if error is None:
        verify(headers, BODY, [secret], now=lambda: NOW)
    else:
        with pytest.raises(WebhookVerificationError, match=error):
            verify(headers, BODY, [secret], now=lambda: NOW)


def test_verify_tolerance_is_configurable() -> None:
    secret = generate_secret()
    headers = _signed(secret, timestamp=NOW - 60)
    verify(headers, BODY, [secret], tolerance=60, now=lambda: NOW)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(headers, BODY, [secret], tolerance=59, now=lambda: NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_names_a_missing_header(missing: str) -> None:
    secret = generate_secret()
    headers = _signed(secret)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=f"missing {missing} header"):
        verify(headers, BODY, [secret], now=lambda: NOW)


@pytest.mark.parametrize("value", ["abc", "1714564800.5", "-1714564800", "１２３", "9" * 40])
def test_verify_refuses_a_malformed_timestamp(value: str) -> None:
    secret = generate_secret()
    headers = _signed(secret)
    headers["webhook-timestamp"] = value
    with pytest.raises(WebhookVerificationError, match="invalid webhook-timestamp"):
        verify(headers, BODY, [secret], now=lambda: NOW)


def test_verify_refuses_a_timestamp_with_leading_zeros_as_it_was_not_what_was_signed() -> None:
    secret = generate_secret()
    headers = _signed(secret)
    headers["webhook-timestamp"] = "0" + headers["webhook-timestamp"]
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, [secret], now=lambda: NOW)


def test_verify_skips_malformed_and_unknown_entries_and_finds_the_good_one() -> None:
    secret = generate_secret()
    good = _signed(secret)["webhook-signature"]
    headers = _signed(secret)
    headers["webhook-signature"] = f"v2,abc v1 v1,%%% v1a,AAAA  {good}"
    verify(headers, BODY, [secret], now=lambda: NOW)


def test_verify_with_any_of_several_trusted_secrets() -> None:
    old, new = generate_secret(), generate_secret()
    headers = _signed(old)
    verify(headers, BODY, [new, old], now=lambda: NOW)
    verify(headers, BODY, [old, new], now=lambda: NOW)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, [new], now=lambda: NOW)


def test_verify_v1a_with_public_key_or_signing_key() -> None:
    signing_key, public_key = generate_keypair()
    headers = WebhookSigner([signing_key]).sign(MSG_ID, NOW, BODY)
    verify(headers, BODY, [public_key], now=lambda: NOW)
    verify(headers, BODY, [signing_key], now=lambda: NOW)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, [generate_keypair()[1]], now=lambda: NOW)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY + b"x", [public_key], now=lambda: NOW)


def test_verify_does_not_take_a_v1a_entry_for_a_v1_one() -> None:
    secret = generate_secret()
    headers = _signed(secret)
    headers["webhook-signature"] = "v1a," + headers["webhook-signature"].removeprefix("v1,")
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, [secret], now=lambda: NOW)


def test_verify_refuses_an_id_that_could_shift_the_signed_fields() -> None:
    secret = generate_secret()
    headers = _signed(secret)
    headers["webhook-id"] = "msg.1"
    with pytest.raises(WebhookVerificationError, match="invalid webhook-id"):
        verify(headers, BODY, [secret], now=lambda: NOW)


def test_verifier_uses_the_injected_clock_on_every_call() -> None:
    secret = generate_secret()
    clock = [float(NOW)]
    verifier = WebhookVerifier([secret], clock=lambda: clock[0])
    headers = _signed(secret)
    verifier.verify(headers, BODY)
    clock[0] += 301
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(headers, BODY)


def test_verifier_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="at least one secret or public key"):
        WebhookVerifier([])
    with pytest.raises(ValueError, match="tolerance must not be negative"):
        WebhookVerifier([generate_secret()], tolerance=-1)
