"""Stripe verifier against Stripe's documented scheme and the official ``stripe`` SDK."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
import stripe

from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    PayloadError,
    StripeVerifier,
    VerificationError,
)

SECRET = "whsec_3bd1b4c2f0a94e7d8c6b5a4f3e2d1c0b"
T = 1_726_137_600
EVENT = (
    b'{\n  "id": "evt_1PyTq2LkdIwHu7ixVtQx0c9A",\n  "object": "event",\n'
    b'  "api_version": "2024-06-20",\n  "created": 1726137598,\n'
    b'  "data": {"object": {"id": "in_1PyTq0LkdIwHu7ixd4c3b2a1", "object": "invoice",'
    b' "amount_paid": 4900, "currency": "usd", "status": "paid"}},\n'
    b'  "livemode": false,\n  "type": "invoice.paid"\n}'
)


def documented_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Build Stripe-Signature as Stripe documents it: t=..., v1=HMAC-SHA256(secret, "t.body")."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def flip_last_char(value: str) -> str:
    """Change the last character to another hex digit."""
    return value[:-1] + ("1" if value[-1] == "0" else "0")


def request(header: str | None, body: bytes = EVENT) -> InboundRequest:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return InboundRequest("POST", "https://hub.example.com/in/src_1", "/in/src_1", headers, body)


def verifier(now: float = T + 5) -> StripeVerifier:
    return StripeVerifier(SECRET, now=lambda: now)


def failed_check(req: InboundRequest, v: StripeVerifier | None = None) -> str:
    with pytest.raises(VerificationError) as info:
        (v or verifier()).verify(req)
    return info.value.check


def test_documented_header_is_accepted_and_described() -> None:
    verified = verifier().verify(request(documented_header(EVENT, SECRET, T)))

    assert verified.delivery_id == "evt_1PyTq2LkdIwHu7ixVtQx0c9A"
    assert verified.event_type == "invoice.paid"
    assert verified.timestamp == datetime.fromtimestamp(T, tz=UTC)
    assert verified.payload["data"]["object"]["amount_paid"] == 4900
    assert verified.challenge_response is None


def test_the_same_request_passes_stripes_own_construct_event() -> None:
    now = int(time.time())
    header = documented_header(EVENT, SECRET, now)

    event = stripe.Webhook.construct_event(EVENT.decode(), header, SECRET)
    ours = StripeVerifier(SECRET, now=lambda: now).verify(request(header))

    assert event["id"] == ours.delivery_id
    assert event["type"] == ours.event_type


def test_header_from_the_sdk_signature_helper_is_accepted() -> None:
    header = stripe.WebhookSignature.generate_signature_header(EVENT.decode(), SECRET, timestamp=T)

    assert verifier().verify(request(header)).delivery_id == "evt_1PyTq2LkdIwHu7ixVtQx0c9A"


def test_any_of_several_v1_signatures_may_match_during_secret_rolling() -> None:
    old = documented_header(EVENT, "whsec_old", T).split(",")[1]
    new = documented_header(EVENT, SECRET, T).split(",")[1]
    v0 = "v0=" + "ab" * 32

    assert verifier().verify(request(f"t={T},{old},{v0},{new}")).event_type == "invoice.paid"


@pytest.mark.parametrize(
    ("header", "body"),
    [
        pytest.param(
            documented_header(EVENT, SECRET, T), EVENT.replace(b"4900", b"4901"), id="body"
        ),
        pytest.param(documented_header(EVENT, "whsec_wrong", T), EVENT, id="wrong-secret"),
        pytest.param(flip_last_char(documented_header(EVENT, SECRET, T)), EVENT, id="signature"),
        pytest.param(
            documented_header(EVENT, SECRET, T).replace(f"t={T}", f"t={T + 1}"), EVENT, id="t"
        ),
    ],
)
def test_tampered_requests_are_refused_by_us_and_by_stripe(header: str, body: bytes) -> None:
    assert failed_check(request(header, body)) == "signature_mismatch"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body.decode(), header, SECRET, tolerance=None)


def test_stale_timestamp_is_refused_past_300_seconds_only() -> None:
    header = documented_header(EVENT, SECRET, T)

    assert verifier(now=T + 300).verify(request(header)).event_type == "invoice.paid"
    assert failed_check(request(header), verifier(now=T + 301)) == "stale_timestamp"


def test_future_timestamp_is_refused() -> None:
    header = documented_header(EVENT, SECRET, T)

    assert failed_check(request(header), verifier(now=T - 301)) == "future_timestamp"


def test_missing_header_is_refused() -> None:
    assert failed_check(request(None)) == "missing_header"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"t={T}",
        "v1=" + "ab" * 32,
        f"t=soon,v1={'ab' * 32}",
        f"t={T},v1=zz",
        f"t={T},t={T},v1=ab",
    ],
)
def test_malformed_header_is_refused(header: str) -> None:
    assert failed_check(request(header)) == "malformed_header"


def test_a_timestamp_out_of_range_says_how_many_digits_are_read() -> None:
    """A 16-digit timestamp is a whole number of seconds: the refusal names the bound."""
    with pytest.raises(VerificationError) as info:
        verifier().verify(request(f"t={10**15},v1={'ab' * 32}"))
    assert info.value.check == "malformed_header"
    assert "(1 to 12 digits)" in str(info.value)


def test_signature_is_checked_before_the_payload_is_parsed() -> None:
    not_json = b"{not json"

    assert failed_check(request(documented_header(not_json, "whsec_wrong", T), not_json)) == (
        "signature_mismatch"
    )
    with pytest.raises(PayloadError) as info:
        verifier().verify(request(documented_header(not_json, SECRET, T), not_json))
    assert info.value.check == "malformed_payload"


def test_error_messages_reveal_neither_secret_nor_expected_signature() -> None:
    good = documented_header(EVENT, SECRET, T)
    expected_hex = good.split("v1=")[1]
    tampered = request(good, EVENT + b" ")

    with pytest.raises(VerificationError) as info:
        verifier().verify(tampered)

    text = f"{info.value} {info.value!r}"
    mac_of_tampered_body = hmac.new(
        SECRET.encode(), f"{T}.".encode() + EVENT + b" ", hashlib.sha256
    )
    assert SECRET not in text
    assert mac_of_tampered_body.hexdigest() not in text
    assert expected_hex not in text


def test_empty_secret_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="secret"):
        StripeVerifier("")
