"""Twilio verifier against Twilio's documented example and ``twilio.request_validator``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.request_validator import RequestValidator

from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    PayloadError,
    TwilioVerifier,
    VerificationError,
)

# Twilio's published validation example: twilio-python/php/csharp docs and RequestValidator
# tests ("Validate Incoming Requests"): auth token 12345, this URL and these POST parameters.
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
# twilio-php's RequestValidatorTest pairs this JSON body with this SHA-256.
DOC_JSON_BODY = '{"property": "value", "boolean": true}'
DOC_JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"

TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
URL = "https://hub.example.com/in/src_42"
SMS = {
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "SmsSid": "SM0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+14155550123",
    "To": "+14155550100",
    "Body": "Is order #1042 shipped? 100% sure?",
    "NumMedia": "0",
    "SmsStatus": "received",
}


class MultiParams(dict[str, list[str]]):
    """A form with repeated names, in the shape RequestValidator reads (``getall``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def request(
    url: str,
    body: bytes,
    signature: str | None,
    content_type: str = "application/x-www-form-urlencoded",
    extra: dict[str, str] | None = None,
) -> InboundRequest:
    headers = {"Content-Type": content_type, **(extra or {})}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    path_qs = url.split("/", 3)[3]
    return InboundRequest("POST", url, "/" + path_qs, headers, body)


def failed_check(req: InboundRequest, token: str = TOKEN) -> str:
    with pytest.raises(VerificationError) as info:
        TwilioVerifier(token).verify(req)
    return info.value.check


def test_twilios_documented_example_is_accepted() -> None:
    assert RequestValidator(DOC_TOKEN).validate(DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    req = request(DOC_URL, urlencode(DOC_PARAMS).encode(), DOC_SIGNATURE)

    verified = TwilioVerifier(DOC_TOKEN).verify(req)

    assert verified.payload == DOC_PARAMS
    assert verified.event_type == "call"


def test_form_post_signed_by_the_sdk_is_accepted() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS)
    headers = {"I-Twilio-Idempotency-Token": "a2d6c4f0-3e1b-4b5a-9c8d-7e6f5a4b3c2d"}

    verified = TwilioVerifier(TOKEN).verify(
        request(URL, urlencode(SMS).encode(), signature, extra=headers)
    )

    assert verified.payload == SMS
    assert verified.event_type == "message.received"
    assert verified.delivery_id == "a2d6c4f0-3e1b-4b5a-9c8d-7e6f5a4b3c2d"
    assert verified.timestamp is None


def test_without_idempotency_token_there_is_no_delivery_id() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS)

    assert (
        TwilioVerifier(TOKEN).verify(request(URL, urlencode(SMS).encode(), signature)).delivery_id
        is None
    )


def test_repeated_parameters_are_signed_as_the_sdk_signs_them() -> None:
    params = MultiParams({"Digits": ["2", "1", "2"], "CallSid": ["CA1"], "Empty": [""]})
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    body = b"Digits=2&CallSid=CA1&Digits=1&Digits=2&Empty="

    assert TwilioVerifier(TOKEN).verify(request(URL, body, signature)).payload["CallSid"] == "CA1"


@pytest.mark.parametrize(
    ("signed_url", "request_url"),
    [
        pytest.param(
            "https://hub.example.com:443/in/src_42?x=1",
            "https://hub.example.com/in/src_42?x=1",
            id="signed-with-port",
        ),
        pytest.param(
            "https://hub.example.com/in/src_42?x=1",
            "https://hub.example.com:443/in/src_42?x=1",
            id="signed-without-port",
        ),
        pytest.param(
            "http://hub.example.com:80/in/src_42", "http://hub.example.com/in/src_42", id="http"
        ),
        pytest.param(
            "https://hub.example.com/in/src_42",
            "https://hub.example.com:8443/in/src_42",
            id="other-port",
        ),
    ],
)
def test_url_is_accepted_with_and_without_port_like_the_sdk(
    signed_url: str, request_url: str
) -> None:
    signature = RequestValidator(TOKEN).compute_signature(signed_url, SMS)
    assert RequestValidator(TOKEN).validate(request_url, SMS, signature)

    assert TwilioVerifier(TOKEN).verify(request(request_url, urlencode(SMS).encode(), signature))


def test_json_body_with_body_sha256_is_accepted() -> None:
    validator = RequestValidator(DOC_TOKEN)
    assert validator.compute_hash(DOC_JSON_BODY) == DOC_JSON_HASH
    url = f"{DOC_URL}&bodySHA256={DOC_JSON_HASH}"
    signature = validator.compute_signature(url, {})
    assert validator.validate(url, DOC_JSON_BODY, signature)

    verified = TwilioVerifier(DOC_TOKEN).verify(
        request(url, DOC_JSON_BODY.encode(), signature, "application/json")
    )

    assert verified.payload == {"property": "value", "boolean": True}


def json_request(body: str, token: str = TOKEN) -> tuple[InboundRequest, str]:
    validator = RequestValidator(token)
    url = f"{URL}?bodySHA256={validator.compute_hash(body)}"
    signature = validator.compute_signature(url, {})
    return request(url, body.encode(), signature, "application/json"), signature


def test_json_body_not_matching_body_sha256_is_refused_by_us_and_by_the_sdk() -> None:
    req, signature = json_request('{"type": "com.twilio.messaging.inbound-message.received"}')
    tampered = '{"type": "com.twilio.messaging.inbound-message.receivex"}'

    assert not RequestValidator(TOKEN).validate(req.url, tampered, signature)
    assert failed_check(request(req.url, tampered.encode(), signature, "application/json")) == (
        "body_hash_mismatch"
    )


def test_json_body_type_is_the_event_type() -> None:
    req, _ = json_request('{"type": "com.twilio.messaging.inbound-message.received"}')

    assert (
        TwilioVerifier(TOKEN).verify(req).event_type
        == "com.twilio.messaging.inbound-message.received"
    )


def test_json_body_without_body_sha256_is_refused_as_unsigned() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, {})

    assert failed_check(request(URL, b'{"a": 1}', signature, "application/json")) == "unsigned_body"


def test_signed_but_malformed_json_is_a_payload_error() -> None:
    req, _ = json_request("{oops")

    with pytest.raises(PayloadError):
        TwilioVerifier(TOKEN).verify(req)


def test_shared_key_hmac_sha256_signature_is_accepted() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS, algorithm="HMAC_SHA256")
    settings = {
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_01,algorithm=HMAC_SHA256"
    }
    body = urlencode(SMS).encode()

    assert TwilioVerifier(TOKEN).verify(request(URL, body, signature, extra=settings))
    assert failed_check(request(URL, body, signature)) == "signature_mismatch"


def test_unknown_signature_algorithm_is_malformed() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS)
    settings = {"X-Twilio-Webhooks-Signature-Settings": "key=k,algorithm=HMAC_MD5"}

    assert failed_check(request(URL, urlencode(SMS).encode(), signature, extra=settings)) == (
        "malformed_header"
    )


def tampered_cases() -> list[Any]:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS)
    body = urlencode(SMS).encode()
    return [
        pytest.param(
            URL, urlencode({**SMS, "Body": "Cancel my order"}).encode(), signature, id="param"
        ),
        pytest.param(URL, body + b"&Extra=1", signature, id="added-param"),
        pytest.param(URL + "?a=1", body, signature, id="url"),
        pytest.param(
            URL, body, RequestValidator("wrong-token").compute_signature(URL, SMS), id="wrong-token"
        ),
        pytest.param(
            URL, body, ("A" if signature[0] != "A" else "B") + signature[1:], id="signature"
        ),
    ]


@pytest.mark.parametrize(("url", "body", "signature"), tampered_cases())
def test_tampered_requests_are_refused_by_us_and_by_the_sdk(
    url: str, body: bytes, signature: str
) -> None:
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    assert not RequestValidator(TOKEN).validate(url, params, signature)
    assert failed_check(request(url, body, signature)) == "signature_mismatch"


def test_missing_signature_is_refused() -> None:
    assert failed_check(request(URL, urlencode(SMS).encode(), None)) == "missing_header"


def test_non_base64_signature_is_malformed() -> None:
    assert failed_check(request(URL, urlencode(SMS).encode(), "not base64!")) == "malformed_header"


def test_json_body_content_is_not_reported_back() -> None:
    body = json.dumps({"secret_field": "s3cr3t-value"})
    req, _ = json_request(body)

    with pytest.raises(VerificationError) as info:
        TwilioVerifier("wrong-token").verify(req)

    assert "s3cr3t-value" not in str(info.value)
    assert TOKEN not in str(info.value)
