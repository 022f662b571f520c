"""GitHub verifier against GitHub's documented example and an independent HMAC."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest

from interlink.webhooks.inbound.verifiers import (
    GitHubVerifier,
    InboundRequest,
    PayloadError,
    VerificationError,
)

# docs.github.com, "Validating webhook deliveries": test values for an implementation.
DOC_SECRET = "It's a Secret to Everybody"
DOC_PAYLOAD = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SECRET = "gh-webhook-secret-7f3a"
ISSUES = json.dumps(
    {
        "action": "opened",
        "issue": {"number": 1347, "title": "Sync stalls"},
        "sender": {"login": "octocat"},
    }
).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request(
    body: bytes,
    sig: str | None,
    event: str | None = "issues",
    content_type: str = "application/json",
) -> InboundRequest:
    headers = {
        "Content-Type": content_type,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    if sig is not None:
        headers["X-Hub-Signature-256"] = sig
    if event is not None:
        headers["X-GitHub-Event"] = event
    return InboundRequest("POST", "https://hub.example.com/in/src_9", "/in/src_9", headers, body)


def failed_check(req: InboundRequest, secret: str = SECRET) -> str:
    with pytest.raises(VerificationError) as info:
        GitHubVerifier(secret).verify(req)
    return info.value.check


def test_githubs_documented_signature_passes_the_signature_check() -> None:
    # The documented payload is not JSON, so a passing signature surfaces as a payload error.
    with pytest.raises(PayloadError):
        GitHubVerifier(DOC_SECRET).verify(request(DOC_PAYLOAD, DOC_SIGNATURE))
    assert failed_check(request(DOC_PAYLOAD, DOC_SIGNATURE), "it's a secret to everybody") == (
        "signature_mismatch"
    )


def test_documented_signature_matches_the_documented_payload_only() -> None:
    assert (
        failed_check(request(b"Hello, World?", DOC_SIGNATURE), DOC_SECRET) == "signature_mismatch"
    )


def test_signed_delivery_is_accepted_and_described() -> None:
    verified = GitHubVerifier(SECRET).verify(request(ISSUES, signature(ISSUES)))

    assert verified.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert verified.event_type == "issues.opened"
    assert verified.timestamp is None
    assert verified.payload["issue"]["number"] == 1347


def test_event_without_action_is_the_event_header_alone() -> None:
    body = b'{"ref": "refs/heads/main", "commits": []}'

    assert (
        GitHubVerifier(SECRET).verify(request(body, signature(body), "push")).event_type == "push"
    )


def test_uppercase_hex_signature_is_accepted() -> None:
    sig = signature(ISSUES)

    assert GitHubVerifier(SECRET).verify(request(ISSUES, "sha256=" + sig[7:].upper()))


def test_form_encoded_delivery_is_accepted() -> None:
    body = urlencode({"payload": ISSUES.decode()}).encode()
    req = request(body, signature(body), content_type="application/x-www-form-urlencoded")

    assert GitHubVerifier(SECRET).verify(req).payload["action"] == "opened"


@pytest.mark.parametrize(
    ("body", "sig"),
    [
        pytest.param(ISSUES.replace(b"opened", b"closed"), signature(ISSUES), id="body"),
        pytest.param(ISSUES, signature(ISSUES, "wrong-secret"), id="wrong-secret"),
        pytest.param(
            ISSUES,
            signature(ISSUES)[:-1] + ("1" if signature(ISSUES)[-1] == "0" else "0"),
            id="signature",
        ),
        pytest.param(ISSUES, signature(ISSUES)[:-2], id="truncated"),
    ],
)
def test_tampered_requests_are_refused(body: bytes, sig: str) -> None:
    assert failed_check(request(body, sig)) == "signature_mismatch"


def test_missing_signature_is_refused() -> None:
    assert failed_check(request(ISSUES, None)) == "missing_header"


@pytest.mark.parametrize("sig", ["sha1=" + "ab" * 20, "ab" * 32, "sha256=not-hex"])
def test_malformed_signature_is_refused(sig: str) -> None:
    assert failed_check(request(ISSUES, sig)) == "malformed_header"
