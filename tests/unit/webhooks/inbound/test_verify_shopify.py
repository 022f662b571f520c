"""Shopify verifier against an independent base64 HMAC-SHA256 of the body."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    PayloadError,
    ShopifyVerifier,
    VerificationError,
)

SECRET = "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"
ORDER = (
    b'{"id":820982911946154508,"email":"jon@example.com","total_price":"199.65","currency":"USD"}'
)


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request(body: bytes, sig: str | None, **extra: str) -> InboundRequest:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "acme.myshopify.com",
        **{name.replace("_", "-"): value for name, value in extra.items()},
    }
    if sig is not None:
        headers["X-Shopify-Hmac-Sha256"] = sig
    return InboundRequest("POST", "https://hub.example.com/in/src_3", "/in/src_3", headers, body)


def failed_check(req: InboundRequest, secret: str = SECRET) -> str:
    with pytest.raises(VerificationError) as info:
        ShopifyVerifier(secret).verify(req)
    return info.value.check


def test_signed_webhook_is_accepted_and_described() -> None:
    req = request(
        ORDER,
        signature(ORDER),
        X_Shopify_Webhook_Id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        X_Shopify_Event_Id="98880550-7158-44d4-b7cd-2c97c8a091b5",
    )

    verified = ShopifyVerifier(SECRET).verify(req)

    assert verified.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert verified.event_type == "orders/create"
    assert verified.payload["total_price"] == "199.65"
    assert verified.timestamp is None


def test_event_id_is_the_fallback_delivery_id() -> None:
    req = request(
        ORDER, signature(ORDER), X_Shopify_Event_Id="98880550-7158-44d4-b7cd-2c97c8a091b5"
    )

    assert ShopifyVerifier(SECRET).verify(req).delivery_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_no_id_header_means_no_delivery_id() -> None:
    assert ShopifyVerifier(SECRET).verify(request(ORDER, signature(ORDER))).delivery_id is None


@pytest.mark.parametrize(
    ("body", "sig"),
    [
        pytest.param(ORDER.replace(b"199.65", b"0.01"), signature(ORDER), id="body"),
        pytest.param(ORDER, signature(ORDER, "shpss_wrong"), id="wrong-secret"),
        pytest.param(ORDER, signature(ORDER + b" "), id="signature"),
        pytest.param(
            ORDER, base64.b64encode(hashlib.sha256(ORDER).digest()).decode(), id="unkeyed-hash"
        ),
    ],
)
def test_tampered_requests_are_refused(body: bytes, sig: str) -> None:
    assert failed_check(request(body, sig)) == "signature_mismatch"


def test_missing_signature_is_refused() -> None:
    assert failed_check(request(ORDER, None)) == "missing_header"


@pytest.mark.parametrize("sig", ["not base64!", "abc", "ab=c"])
def test_malformed_signature_is_refused(sig: str) -> None:
    assert failed_check(request(ORDER, sig)) == "malformed_header"


def test_signed_but_malformed_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        ShopifyVerifier(SECRET).verify(request(b"{", signature(b"{")))
