"""Generic HMAC verifier: each configuration against an independent HMAC, and option validation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from interlink.webhooks.inbound.verifiers import (
    HmacOptions,
    HmacVerifier,
    InboundRequest,
    PayloadError,
    VerificationError,
    default_registry,
)

SECRET = "generic-shared-secret-42"
BODY = b'{"event":"order.shipped","order_id":"ord_812"}'
T = 1_726_137_600


def sign(body: bytes, algorithm: str, encoding: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def build(options: dict[str, Any], now: float = T + 5) -> HmacVerifier:
    return HmacVerifier(SECRET, HmacOptions.model_validate(options), now=lambda: now)


def request(
    headers: dict[str, str], body: bytes = BODY, content_type: str = "application/json"
) -> InboundRequest:
    return InboundRequest(
        "POST",
        "https://hub.example.com/in/src_8",
        "/in/src_8",
        {"Content-Type": content_type, **headers},
        body,
    )


def failed_check(verifier: HmacVerifier, req: InboundRequest) -> str:
    with pytest.raises(VerificationError) as info:
        verifier.verify(req)
    return info.value.check


CONFIGS = [
    pytest.param(
        {"header": "X-Hub-Signature", "algorithm": "sha1", "prefix": "sha1="}, id="sha1-hex-prefix"
    ),
    pytest.param({"header": "X-Signature", "encoding": "base64"}, id="sha256-base64"),
    pytest.param({"header": "X-Signature-512", "algorithm": "sha512"}, id="sha512-hex"),
]


@pytest.mark.parametrize("options", CONFIGS)
def test_body_signatures_are_accepted_and_tampering_refused(options: dict[str, Any]) -> None:
    algorithm = options.get("algorithm", "sha256")
    encoding = options.get("encoding", "hex")
    prefix = options.get("prefix", "")
    verifier = build(options)
    good = prefix + sign(BODY, algorithm, encoding)

    assert verifier.verify(request({options["header"]: good})).payload["order_id"] == "ord_812"
    assert (
        failed_check(verifier, request({options["header"]: good}, BODY + b" "))
        == "signature_mismatch"
    )
    wrong = prefix + sign(BODY, algorithm, encoding, "other-secret")
    assert failed_check(verifier, request({options["header"]: wrong})) == "signature_mismatch"
    assert failed_check(verifier, request({})) == "missing_header"


TIMESTAMPED = {
    "header": "X-Webhook-Signature",
    "prefix": "v1=",
    "signed_content": "timestamp.body",
    "timestamp_header": "X-Webhook-Timestamp",
    "id_header": "X-Webhook-Id",
    "event_type_header": "X-Webhook-Event",
}


def timestamped_headers(ts: int = T, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Webhook-Signature": f"v1={signature}",
        "X-Webhook-Timestamp": str(ts),
        "X-Webhook-Id": "dlv_01J7Z6",
        "X-Webhook-Event": "order.shipped",
    }


def test_timestamped_signature_is_accepted_and_described() -> None:
    verified = build(TIMESTAMPED).verify(request(timestamped_headers()))

    assert verified.delivery_id == "dlv_01J7Z6"
    assert verified.event_type == "order.shipped"
    assert verified.timestamp is not None
    assert verified.timestamp.timestamp() == T


def test_timestamped_signature_covers_the_timestamp() -> None:
    headers = {**timestamped_headers(), "X-Webhook-Timestamp": str(T + 1)}

    assert failed_check(build(TIMESTAMPED), request(headers)) == "signature_mismatch"


@pytest.mark.parametrize(
    ("now", "check"), [(T + 301, "stale_timestamp"), (T - 301, "future_timestamp")]
)
def test_timestamp_outside_tolerance_is_refused(now: int, check: str) -> None:
    assert failed_check(build(TIMESTAMPED, now=now), request(timestamped_headers())) == check


def test_tolerance_is_configurable() -> None:
    verifier = build({**TIMESTAMPED, "tolerance_seconds": 30}, now=T + 31)

    assert failed_check(verifier, request(timestamped_headers())) == "stale_timestamp"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Webhook-Signature": "sha256=abcd"}, id="wrong-prefix"),
        pytest.param({"X-Webhook-Signature": "v1=nothex"}, id="not-hex"),
        pytest.param({"X-Webhook-Timestamp": "soon"}, id="timestamp"),
    ],
)
def test_malformed_headers_are_refused(headers: dict[str, str]) -> None:
    assert (
        failed_check(build(TIMESTAMPED), request({**timestamped_headers(), **headers}))
        == "malformed_header"
    )


def test_registry_builds_the_configured_verifier() -> None:
    verifier = default_registry().create("hmac", SECRET, {"header": "X-Sig", "encoding": "base64"})

    assert verifier.verify(request({"X-Sig": sign(BODY, "sha256", "base64")})).payload["event"] == (
        "order.shipped"
    )


def test_payload_follows_the_content_type() -> None:
    verifier = build({"header": "X-Sig"})
    form = b"status=shipped&order=ord_812"
    text = b"plain text ping"

    assert verifier.verify(
        request({"X-Sig": sign(form, "sha256", "hex")}, form, "application/x-www-form-urlencoded")
    ).payload == {
        "status": "shipped",
        "order": "ord_812",
    }
    assert (
        verifier.verify(request({"X-Sig": sign(text, "sha256", "hex")}, text, "text/plain")).payload
        is None
    )
    with pytest.raises(PayloadError):
        verifier.verify(request({"X-Sig": sign(b"{", "sha256", "hex")}, b"{"))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({}, "header", id="header-required"),
        pytest.param({"header": "X-Sig", "algorithm": "md5"}, "algorithm", id="algorithm"),
        pytest.param({"header": "X-Sig", "encoding": "base32"}, "encoding", id="encoding"),
        pytest.param({"header": "X Sig"}, "header", id="header-not-a-token"),
        pytest.param(
            {"header": "X-Sig", "tolerance_seconds": 0}, "tolerance_seconds", id="tolerance"
        ),
        pytest.param({"header": "X-Sig", "colour": "blue"}, "colour", id="unknown-option"),
        pytest.param(
            {"header": "X-Sig", "signed_content": "timestamp.body"},
            "timestamp_header",
            id="needs-timestamp-header",
        ),
        pytest.param(
            {"header": "X-Sig", "timestamp_header": "X-Ts"},
            "timestamp_header",
            id="unsigned-timestamp",
        ),
    ],
)
def test_bad_options_raise_value_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field) as info:
        default_registry().create("hmac", SECRET, options)

    assert "invalid hmac options" in str(info.value)
