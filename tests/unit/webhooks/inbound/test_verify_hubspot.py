"""HubSpot v3 verifier against HubSpot's SDK test vector and an independent HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from interlink.webhooks.inbound.verifiers import (
    HubSpotVerifier,
    InboundRequest,
    PayloadError,
    VerificationError,
)
from interlink.webhooks.inbound.verifiers.hubspot import normalize_uri

# The v3 vector in HubSpot's official Python SDK tests (hubspot-api-python,
# tests/spec/utils/test_signature.py::test_get_signature__v3). Its body is not JSON.
SDK_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
SDK_BODY = b"{'example_field':'example_value'}"
SDK_URL = "https://www.example.com/webhook_uri"
SDK_TIMESTAMP_MS = "15000000"
SDK_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="

SECRET = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
URL = "https://hub.example.com/in/src_7"
T_MS = 1_726_137_600_000
EVENTS = [
    {
        "eventId": 1,
        "subscriptionId": 2881778,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": T_MS - 2000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 1246965,
        "propertyName": "lifecyclestage",
        "propertyValue": "customer",
        "changeSource": "CRM_UI",
    }
]
BODY = json.dumps(EVENTS).encode()


def signature(source_uri: str, body: bytes, ts_ms: int | str, secret: str = SECRET) -> str:
    """HubSpot v3 as documented: base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    source = b"POST" + source_uri.encode() + body + str(ts_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def request(
    url: str, body: bytes, sig: str | None, ts_ms: int | str | None = T_MS
) -> InboundRequest:
    headers = {"Content-Type": "application/json"}
    if sig is not None:
        headers["X-HubSpot-Signature-v3"] = sig
    if ts_ms is not None:
        headers["X-HubSpot-Request-Timestamp"] = str(ts_ms)
    return InboundRequest("POST", url, url.split(".com", 1)[1], headers, body)


def verifier(now_ms: int = T_MS + 1000, secret: str = SECRET) -> HubSpotVerifier:
    return HubSpotVerifier(secret, now=lambda: now_ms / 1000)


def failed_check(req: InboundRequest, v: HubSpotVerifier | None = None) -> str:
    with pytest.raises(VerificationError) as info:
        (v or verifier()).verify(req)
    return info.value.check


def test_hubspot_sdk_vector_passes_the_signature_check() -> None:
    req = request(SDK_URL, SDK_BODY, SDK_SIGNATURE, SDK_TIMESTAMP_MS)
    v = HubSpotVerifier(SDK_SECRET, now=lambda: 15_000 + 1)

    # The vector's body is not JSON: getting past the signature surfaces as a payload error.
    with pytest.raises(PayloadError):
        v.verify(req)
    assert failed_check(request(SDK_URL + "/", SDK_BODY, SDK_SIGNATURE, SDK_TIMESTAMP_MS), v) == (
        "signature_mismatch"
    )


def test_signed_batch_is_accepted_and_described() -> None:
    verified = verifier().verify(request(URL, BODY, signature(URL, BODY, T_MS)))

    assert verified.event_type == "contact.propertyChange"
    assert verified.payload == EVENTS
    assert verified.timestamp is not None
    assert verified.timestamp.timestamp() == T_MS / 1000
    assert verified.delivery_id is not None
    assert verified.delivery_id.startswith("hubspot-batch:")


def test_uri_is_signed_with_the_documented_characters_decoded() -> None:
    url = (
        f"{URL}?next=https%3A%2F%2Fapp.example.com%2Fa%20b%3Fq%3D1"
        "&list=%28a%2Cb%29%3B%21%24%27%2A%40"
    )
    signed_as = f"{URL}?next=https://app.example.com/a%20b?q%3D1&list=(a,b);!$'*@"

    assert verifier().verify(request(url, BODY, signature(signed_as, BODY, T_MS)))
    assert failed_check(request(url, BODY, signature(url, BODY, T_MS))) == "signature_mismatch"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://h.example/a%3Ab", "https://h.example/a:b"),
        ("https://h.example/a%3ab", "https://h.example/a:b"),
        ("https://h.example/?x=%253A", "https://h.example/?x=%253A"),
        ("https://h.example/?x=%20%26%3D%2B", "https://h.example/?x=%20%26%3D%2B"),
    ],
)
def test_normalize_uri_decodes_only_the_listed_characters_once(raw: str, normalized: str) -> None:
    assert normalize_uri(raw) == normalized


def test_retries_of_one_batch_share_a_delivery_id() -> None:
    retry_body = json.dumps([{**EVENTS[0], "attemptNumber": 3}]).encode()
    other_body = json.dumps([{**EVENTS[0], "eventId": 2}]).encode()

    first = verifier().verify(request(URL, BODY, signature(URL, BODY, T_MS)))
    retry = verifier().verify(request(URL, retry_body, signature(URL, retry_body, T_MS)))
    other = verifier().verify(request(URL, other_body, signature(URL, other_body, T_MS)))

    assert first.delivery_id == retry.delivery_id
    assert first.delivery_id != other.delivery_id


def test_mixed_batch_has_no_single_event_type() -> None:
    body = json.dumps([EVENTS[0], {**EVENTS[0], "subscriptionType": "deal.creation"}]).encode()

    assert verifier().verify(request(URL, body, signature(URL, body, T_MS))).event_type is None


@pytest.mark.parametrize(
    ("url", "body", "sig", "ts"),
    [
        pytest.param(
            URL, BODY.replace(b"customer", b"lead"), signature(URL, BODY, T_MS), T_MS, id="body"
        ),
        pytest.param(
            URL, BODY, signature(URL, BODY, T_MS, "wrong-secret"), T_MS, id="wrong-secret"
        ),
        pytest.param(URL + "x", BODY, signature(URL, BODY, T_MS), T_MS, id="url"),
        pytest.param(URL, BODY, signature(URL, BODY, T_MS), T_MS + 1, id="timestamp"),
        pytest.param(URL, BODY, signature(URL, BODY + b" ", T_MS), T_MS, id="signature"),
    ],
)
def test_tampered_requests_are_refused(url: str, body: bytes, sig: str, ts: int) -> None:
    assert failed_check(request(url, body, sig, ts)) == "signature_mismatch"


def test_stale_timestamp_is_refused_past_five_minutes() -> None:
    req = request(URL, BODY, signature(URL, BODY, T_MS))

    assert verifier(now_ms=T_MS + 300_000).verify(req)
    assert failed_check(req, verifier(now_ms=T_MS + 301_000)) == "stale_timestamp"


def test_future_timestamp_is_refused() -> None:
    req = request(URL, BODY, signature(URL, BODY, T_MS))

    assert failed_check(req, verifier(now_ms=T_MS - 301_000)) == "future_timestamp"


def test_timestamp_in_seconds_is_far_too_old() -> None:
    ts_seconds = T_MS // 1000

    assert failed_check(request(URL, BODY, signature(URL, BODY, ts_seconds), ts_seconds)) == (
        "stale_timestamp"
    )


@pytest.mark.parametrize(
    ("sig", "ts"),
    [
        pytest.param(None, T_MS, id="signature"),
        pytest.param(signature(URL, BODY, T_MS), None, id="timestamp"),
    ],
)
def test_missing_headers_are_refused(sig: str | None, ts: int | None) -> None:
    assert failed_check(request(URL, BODY, sig, ts)) == "missing_header"


@pytest.mark.parametrize(
    ("sig", "ts"),
    [
        pytest.param("***", T_MS, id="signature-not-base64"),
        pytest.param(signature(URL, BODY, T_MS), "1.7e12", id="timestamp-not-whole"),
    ],
)
def test_malformed_headers_are_refused(sig: str, ts: str | int) -> None:
    assert failed_check(request(URL, BODY, sig, ts)) == "malformed_header"
