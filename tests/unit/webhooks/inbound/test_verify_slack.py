"""Slack verifier against Slack's documented example and ``slack_sdk.signature``."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import Clock, SignatureVerifier

from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    PayloadError,
    SlackVerifier,
    VerificationError,
)

# The worked example in Slack's "Verifying requests from Slack" guide
# (api.slack.com/authentication/verifying-requests-from-slack), a slash-command form post.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "e7c1a9f0b2d34c5e8f6a7b8c9d0e1f2a"
T = 1_726_137_600
EVENT = json.dumps(
    {
        "token": "XXYYZZ",
        "team_id": "T061EG9R6",
        "api_app_id": "A0PNCHHK2",
        "event": {"type": "app_mention", "user": "U061F7AUR", "text": "<@U0LAN0Z89> hi"},
        "type": "event_callback",
        "event_id": "Ev0PV52K21",
        "event_time": T,
    }
).encode()


class FixedClock(Clock):
    """A slack_sdk clock pinned to one instant."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def sdk_signature(body: bytes, timestamp: int | str = T, secret: str = SECRET) -> str:
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    return signature


def request(
    body: bytes,
    signature: str | None,
    timestamp: str | None = str(T),
    content_type: str = "application/json",
) -> InboundRequest:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    return InboundRequest("POST", "https://hub.example.com/in/src_1", "/in/src_1", headers, body)


def failed_check(req: InboundRequest, now: float = T + 5, secret: str = SECRET) -> str:
    with pytest.raises(VerificationError) as info:
        SlackVerifier(secret, now=lambda: now).verify(req)
    return info.value.check


def test_slacks_documented_example_is_accepted() -> None:
    req = request(DOC_BODY, DOC_SIGNATURE, DOC_TIMESTAMP, "application/x-www-form-urlencoded")

    verified = SlackVerifier(DOC_SECRET, now=lambda: int(DOC_TIMESTAMP) + 60).verify(req)

    assert verified.event_type == "slash_command"
    assert verified.payload["command"] == "/webhook-collect"
    assert verified.payload["text"] == ""
    assert verified.delivery_id is None


def test_slack_sdk_computes_the_documented_signature_too() -> None:
    assert sdk_signature(DOC_BODY, DOC_TIMESTAMP, DOC_SECRET) == DOC_SIGNATURE


def test_event_callback_signed_by_slack_sdk_is_accepted() -> None:
    verified = SlackVerifier(SECRET, now=lambda: T + 5).verify(request(EVENT, sdk_signature(EVENT)))

    assert verified.delivery_id == "Ev0PV52K21"
    assert verified.event_type == "app_mention"
    assert verified.timestamp is not None
    assert verified.timestamp.timestamp() == T
    assert verified.challenge_response is None


def test_url_verification_is_answered_with_the_challenge() -> None:
    body = json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd",
            "type": "url_verification",
        }
    ).encode()

    verified = SlackVerifier(SECRET, now=lambda: T).verify(request(body, sdk_signature(body)))

    assert verified.challenge_response is not None
    assert verified.challenge_response.body == b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd"
    assert verified.challenge_response.media_type == "text/plain"
    assert verified.event_type == "url_verification"
    assert verified.delivery_id is None


def test_url_verification_still_needs_a_valid_signature() -> None:
    body = b'{"type":"url_verification","challenge":"abc"}'

    assert failed_check(request(body, sdk_signature(body, secret="other"))) == "signature_mismatch"


def test_interactivity_form_payload_is_parsed() -> None:
    interaction = {
        "type": "block_actions",
        "user": {"id": "U061F7AUR"},
        "actions": [{"value": "ok"}],
    }
    body = urlencode({"payload": json.dumps(interaction)}).encode()
    req = request(body, sdk_signature(body), content_type="application/x-www-form-urlencoded")

    verified = SlackVerifier(SECRET, now=lambda: T).verify(req)

    assert verified.event_type == "block_actions"
    assert verified.payload == interaction


def test_interactivity_form_payload_keeps_integers_beyond_64_bits_exact() -> None:
    interaction = {"type": "block_actions", "actions": [{"value": 2**64 + 1, "min": -(2**63) - 1}]}
    body = urlencode({"payload": json.dumps(interaction)}).encode()
    req = request(body, sdk_signature(body), content_type="application/x-www-form-urlencoded")

    verified = SlackVerifier(SECRET, now=lambda: T).verify(req)

    assert verified.payload == interaction
    assert type(verified.payload["actions"][0]["value"]) is int


@pytest.mark.parametrize(
    ("body", "signature", "timestamp"),
    [
        pytest.param(EVENT + b" ", sdk_signature(EVENT), str(T), id="body"),
        pytest.param(
            EVENT, sdk_signature(EVENT, secret="not-the-secret"), str(T), id="wrong-secret"
        ),
        pytest.param(EVENT, sdk_signature(EVENT)[:-2] + "00", str(T), id="signature"),
        pytest.param(EVENT, sdk_signature(EVENT), str(T + 1), id="timestamp"),
    ],
)
def test_tampered_requests_are_refused_by_us_and_by_slack_sdk(
    body: bytes, signature: str, timestamp: str
) -> None:
    assert signature != sdk_signature(body, timestamp), "the case must really be tampered"
    assert failed_check(request(body, signature, timestamp)) == "signature_mismatch"
    sdk = SignatureVerifier(SECRET, clock=FixedClock(T + 5))
    assert not sdk.is_valid(body=body, timestamp=timestamp, signature=signature)


def test_stale_timestamp_is_refused_past_five_minutes_like_slack_sdk() -> None:
    req = request(EVENT, sdk_signature(EVENT))

    assert SlackVerifier(SECRET, now=lambda: T + 300).verify(req).delivery_id == "Ev0PV52K21"
    assert failed_check(req, now=T + 301) == "stale_timestamp"
    assert not SignatureVerifier(SECRET, clock=FixedClock(T + 301)).is_valid_request(
        EVENT, dict(req.headers)
    )


def test_future_timestamp_is_refused() -> None:
    assert failed_check(request(EVENT, sdk_signature(EVENT)), now=T - 301) == "future_timestamp"


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        pytest.param(None, str(T), id="signature"),
        pytest.param("v0=" + "ab" * 32, None, id="timestamp"),
    ],
)
def test_missing_headers_are_refused(signature: str | None, timestamp: str | None) -> None:
    assert failed_check(request(EVENT, signature, timestamp)) == "missing_header"


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        pytest.param("ab" * 32, str(T), id="no-v0-prefix"),
        pytest.param("v0=xyz", str(T), id="not-hex"),
        pytest.param("v0=" + "ab" * 32, "yesterday", id="timestamp-not-a-number"),
        pytest.param("v0=" + "ab" * 32, "1.5e9", id="timestamp-not-whole"),
    ],
)
def test_malformed_headers_are_refused(signature: str, timestamp: str) -> None:
    assert failed_check(request(EVENT, signature, timestamp)) == "malformed_header"


def test_signed_but_malformed_json_is_a_payload_error() -> None:
    body = b'{"type": "event_callback",'

    with pytest.raises(PayloadError):
        SlackVerifier(SECRET, now=lambda: T).verify(request(body, sdk_signature(body)))
