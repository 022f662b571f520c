"""Property tests over every verifier: signatures cover every byte of the body.

Requests are signed here with ``hmac``/``hashlib`` directly, following each provider's documented
scheme, independently of the verifiers and of ``senders``. Twilio is tested with a JSON body
(``bodySHA256``): for form posts Twilio signs the *decoded* parameters, so byte changes that keep
them equal (``%2B`` and ``%2b``) are, by Twilio's design, not detectable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlink.webhooks.inbound.verifiers import (
    GitHubVerifier,
    HmacOptions,
    HmacVerifier,
    HubSpotVerifier,
    InboundRequest,
    PayloadError,
    ShopifyVerifier,
    SlackVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    TwilioVerifier,
    VerificationError,
    Verifier,
)

# Hypothesis's failure report touches mypy_extensions.TypedDict, whose DeprecationWarning would
# (with warnings as errors) turn a real failure into an opaque INTERNALERROR.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

SECRET = "property-test-secret"
WHSEC_KEY = b"property-test-key-32-bytes-long!"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
T = 1_726_137_600
URL = "https://hub.example.com/in/src_1"


def _mac(key: bytes, data: bytes, digest: str = "sha256") -> bytes:
    return hmac.new(key, data, getattr(hashlib, digest)).digest()


def _request(headers: dict[str, str], body: bytes, url: str = URL) -> InboundRequest:
    return InboundRequest(
        "POST",
        url,
        url.removeprefix("https://hub.example.com"),
        {"Content-Type": "application/json", **headers},
        body,
    )


def signed_stripe(body: bytes) -> InboundRequest:
    signature = _mac(SECRET.encode(), f"{T}.".encode() + body).hex()
    return _request({"Stripe-Signature": f"t={T},v1={signature}"}, body)


def signed_github(body: bytes) -> InboundRequest:
    return _request({"X-Hub-Signature-256": "sha256=" + _mac(SECRET.encode(), body).hex()}, body)


def signed_shopify(body: bytes) -> InboundRequest:
    return _request(
        {"X-Shopify-Hmac-Sha256": base64.b64encode(_mac(SECRET.encode(), body)).decode()}, body
    )


def signed_slack(body: bytes) -> InboundRequest:
    signature = _mac(SECRET.encode(), f"v0:{T}:".encode() + body).hex()
    return _request(
        {"X-Slack-Signature": f"v0={signature}", "X-Slack-Request-Timestamp": str(T)}, body
    )


def signed_twilio_json(body: bytes) -> InboundRequest:
    url = f"{URL}?bodySHA256={quote(hashlib.sha256(body).hexdigest())}"
    signature = base64.b64encode(_mac(SECRET.encode(), url.encode(), "sha1")).decode()
    return _request({"X-Twilio-Signature": signature}, body, url)


def signed_hubspot(body: bytes) -> InboundRequest:
    ts = str(T * 1000)
    signature = _mac(SECRET.encode(), b"POST" + URL.encode() + body + ts.encode())
    return _request(
        {
            "X-HubSpot-Signature-v3": base64.b64encode(signature).decode(),
            "X-HubSpot-Request-Timestamp": ts,
        },
        body,
    )


def _signed_standard(prefix: str) -> Callable[[bytes], InboundRequest]:
    def sign(body: bytes) -> InboundRequest:
        signature = base64.b64encode(_mac(WHSEC_KEY, f"msg_1.{T}.".encode() + body)).decode()
        headers = {
            f"{prefix}-id": "msg_1",
            f"{prefix}-timestamp": str(T),
            f"{prefix}-signature": f"v1,{signature}",
        }
        return _request(headers, body)

    return sign


def signed_hmac(body: bytes) -> InboundRequest:
    return _request({"X-Sig": "sha512=" + _mac(SECRET.encode(), body, "sha512").hex()}, body)


def _now() -> float:
    return T + 1


CASES: list[tuple[str, Callable[[], Verifier], Callable[[bytes], InboundRequest]]] = [
    ("stripe", lambda: StripeVerifier(SECRET, now=_now), signed_stripe),
    ("github", lambda: GitHubVerifier(SECRET), signed_github),
    ("shopify", lambda: ShopifyVerifier(SECRET), signed_shopify),
    ("slack", lambda: SlackVerifier(SECRET, now=_now), signed_slack),
    ("twilio-json", lambda: TwilioVerifier(SECRET), signed_twilio_json),
    ("hubspot", lambda: HubSpotVerifier(SECRET, now=_now), signed_hubspot),
    (
        "standard-webhooks",
        lambda: StandardWebhooksVerifier(WHSEC, now=_now),
        _signed_standard("webhook"),
    ),
    (
        "svix",
        lambda: StandardWebhooksVerifier(WHSEC, header_prefix="svix", now=_now),
        _signed_standard("svix"),
    ),
    (
        "hmac",
        lambda: HmacVerifier(
            SECRET, HmacOptions(header="X-Sig", algorithm="sha512", prefix="sha512=")
        ),
        signed_hmac,
    ),
]
PARAMS = [pytest.param(make, sign, id=name) for name, make, sign in CASES]


@pytest.mark.parametrize(("make_verifier", "sign"), PARAMS)
@given(body=st.binary(max_size=512))
def test_a_correctly_signed_body_always_passes_the_signature_checks(
    make_verifier: Callable[[], Verifier], sign: Callable[[bytes], InboundRequest], body: bytes
) -> None:
    try:
        make_verifier().verify(sign(body))
    except PayloadError:
        pass  # authentic, just not parseable: the signature was accepted


@pytest.mark.parametrize(("make_verifier", "sign"), PARAMS)
@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_any_single_byte_change_to_the_body_fails_verification(
    make_verifier: Callable[[], Verifier],
    sign: Callable[[bytes], InboundRequest],
    body: bytes,
    data: st.DataObject,
) -> None:
    signed = sign(body)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    new_byte = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != body[index]), label="byte"
    )
    changed = body[:index] + bytes([new_byte]) + body[index + 1 :]
    tampered = InboundRequest(signed.method, signed.url, signed.path_qs, signed.headers, changed)

    with pytest.raises(VerificationError) as info:
        make_verifier().verify(tampered)

    assert not isinstance(info.value, PayloadError)
    assert info.value.check in {"signature_mismatch", "body_hash_mismatch"}
