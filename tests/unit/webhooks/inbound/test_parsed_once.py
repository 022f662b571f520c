"""The body is parsed once per request: a verifier's strict parse stands for the payload the
writer emits, and a body only the standard library reads is decoded as before."""

from __future__ import annotations

import hashlib
import hmac

from interlink.webhooks.inbound.payloads import decode_payload
from interlink.webhooks.inbound.verifiers import InboundRequest, StripeVerifier

SECRET = "whsec_parsed_once"
T = 1_726_137_600


def signed(body: bytes, content_type: str = "application/json") -> InboundRequest:
    mac = hmac.new(SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": content_type, "Stripe-Signature": f"t={T},v1={mac}"}
    return InboundRequest("POST", "https://hub.example.com/in/src_1", "/in/src_1", headers, body)


def verify(request: InboundRequest) -> object:
    return StripeVerifier(SECRET, now=lambda: T).verify(request).payload


def test_a_strict_parse_is_kept_and_is_the_emitted_payload() -> None:
    body = b'{"id": "evt_1", "type": "invoice.paid", "data": {"amount": 4900}}'
    request = signed(body)
    assert request.strict_json is None

    payload = verify(request)

    assert request.strict_json is not None
    assert request.strict_json[0] is payload
    assert request.json("stripe") is payload  # not parsed again
    emitted = decode_payload("stripe", "application/json", body, request.strict_json)
    assert emitted is payload
    assert emitted == decode_payload("stripe", "application/json", body)


def test_a_body_orjson_refuses_is_accepted_but_its_parse_not_kept() -> None:
    for body in (
        b'{"id": "evt_2", "type": "x", "ratio": NaN}',
        b'{"id": "evt_3", "type": "x", "n": 1e400}',
        b'{"id": "evt_4", "type": "x", "note": "\\ud800"}',
    ):
        request = signed(body)

        payload = verify(request)

        assert isinstance(payload, dict) and payload["id"].startswith("evt_")
        assert request.strict_json is None
        # The emitted payload stays the text the stored body decodes to, as without a parse.
        assert decode_payload("stripe", "application/json", body, request.strict_json) == (
            body.decode()
        )


def test_the_form_and_nul_rules_apply_to_a_kept_parse_too() -> None:
    with_nul = b'{"id": "evt_5", "type": "x", "note": "a\\u0000b"}'
    request = signed(with_nul)
    verify(request)
    assert decode_payload("stripe", "application/json", with_nul, request.strict_json) == {
        "id": "evt_5",
        "type": "x",
        "note": "ab",
    }

    form_body = b'{"id": "evt_6", "type": "x"}'
    form = signed(form_body, "application/x-www-form-urlencoded")
    verify(form)
    assert form.strict_json is not None
    # A form is decoded as a form, whatever the verifier made of the bytes.
    assert decode_payload("stripe", form.media_type, form_body, form.strict_json) == (
        decode_payload("stripe", form.media_type, form_body)
    )


def test_a_body_with_an_integer_beyond_64_bits_is_kept_exact_and_parsed_once() -> None:
    body = b'{"id": "evt_7", "type": "x", "data": {"amount": 123456789012345678901234}}'
    request = signed(body)

    payload = verify(request)

    assert payload["data"]["amount"] == 123456789012345678901234
    assert request.strict_json is not None
    assert request.strict_json[0] is payload
    emitted = decode_payload("stripe", "application/json", body, request.strict_json)
    assert emitted is payload
    assert emitted == decode_payload("stripe", "application/json", body)
