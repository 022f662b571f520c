"""Standard Webhooks and Svix verifiers against the ``standardwebhooks`` and ``svix`` libraries."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import standardwebhooks.webhooks
import svix.webhooks

from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    PayloadError,
    StandardWebhooksVerifier,
    VerificationError,
)
from interlink.webhooks.inbound.verifiers.standard_webhooks import HeaderPrefix

SECRET = "whsec_" + base64.b64encode(b"interlink-test-signing-key-0001!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a-different-signing-key-00002!!").decode()
MSG_ID = "msg_2mWbsYvrrfNyq6cFPQDtj5Pq0Aa"
T = 1_726_137_600
BODY = (
    '{"type":"invoice.paid","timestamp":"2024-09-12T10:40:00Z","data":{"id":"inv_1","amount":4900}}'
)


def std_signature(secret: str = SECRET, msg_id: str = MSG_ID, ts: int = T, body: str = BODY) -> str:
    return standardwebhooks.webhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(ts, tz=UTC), body
    )


def svix_signature(
    secret: str = SECRET, msg_id: str = MSG_ID, ts: int = T, body: str = BODY
) -> str:
    return svix.webhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body)


def request(
    signature: str | None,
    *,
    prefix: str = "webhook",
    msg_id: str | None = MSG_ID,
    ts: str | None = str(T),
    body: str = BODY,
) -> InboundRequest:
    headers = {"Content-Type": "application/json"}
    if msg_id is not None:
        headers[f"{prefix}-id"] = msg_id
    if ts is not None:
        headers[f"{prefix}-timestamp"] = ts
    if signature is not None:
        headers[f"{prefix}-signature"] = signature
    return InboundRequest(
        "POST", "https://hub.example.com/in/src_5", "/in/src_5", headers, body.encode()
    )


def verifier(
    now: float = T + 10, prefix: HeaderPrefix = "webhook", secret: str = SECRET
) -> StandardWebhooksVerifier:
    return StandardWebhooksVerifier(secret, header_prefix=prefix, now=lambda: now)


def failed_check(req: InboundRequest, v: StandardWebhooksVerifier | None = None) -> str:
    with pytest.raises(VerificationError) as info:
        (v or verifier()).verify(req)
    return info.value.check


def test_standardwebhooks_signature_is_accepted_and_described() -> None:
    verified = verifier().verify(request(std_signature()))

    assert verified.delivery_id == MSG_ID
    assert verified.event_type == "invoice.paid"
    assert verified.timestamp == datetime.fromtimestamp(T, tz=UTC)
    assert verified.payload["data"]["amount"] == 4900


def test_standardwebhooks_library_accepts_the_same_request() -> None:
    now = int(time.time())
    req = request(std_signature(ts=now), ts=str(now))

    library_result = standardwebhooks.webhooks.Webhook(SECRET).verify(req.body, dict(req.headers))
    ours = verifier(now=now).verify(req)

    assert library_result == ours.payload


def test_svix_signature_is_accepted_by_the_svix_variant() -> None:
    v = verifier(prefix="svix")

    verified = v.verify(request(svix_signature(), prefix="svix"))

    assert v.provider == "svix"
    assert verified.delivery_id == MSG_ID


def test_standard_webhooks_variant_does_not_read_svix_headers() -> None:
    assert failed_check(request(svix_signature(), prefix="svix")) == "missing_header"


def test_bare_base64_secret_is_accepted() -> None:
    bare = SECRET.removeprefix("whsec_")

    assert verifier(secret=bare).verify(request(std_signature()))


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    header = " ".join(
        [std_signature(OTHER_SECRET), "v1a,c2lnbmVkLXdpdGgtZWQyNTUxOQ==", std_signature()]
    )

    assert verifier().verify(request(header)).delivery_id == MSG_ID
    assert verifier(secret=OTHER_SECRET).verify(request(header)).delivery_id == MSG_ID


Tamper = Callable[[int], tuple[str, str, str]]
TAMPERS: dict[str, Tamper] = {
    "body": lambda ts: (std_signature(ts=ts), MSG_ID, BODY.replace("4900", "4901")),
    "wrong-secret": lambda ts: (std_signature(OTHER_SECRET, ts=ts), MSG_ID, BODY),
    "message-id": lambda ts: (std_signature(ts=ts), "msg_other", BODY),
    "timestamp": lambda ts: (std_signature(ts=ts + 1), MSG_ID, BODY),
    "signature": lambda ts: ("v1," + base64.b64encode(b"\x00" * 32).decode(), MSG_ID, BODY),
}


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_tampered_requests_are_refused_by_us_and_by_the_library(tamper: Tamper) -> None:
    signature, msg_id, body = tamper(T)
    assert failed_check(request(signature, msg_id=msg_id, body=body)) == "signature_mismatch"

    # The library reads the real clock: tamper a request signed now the same way.
    now = int(time.time())
    signature, msg_id, body = tamper(now)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": signature}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.webhooks.Webhook(SECRET).verify(body, headers)


@pytest.mark.parametrize(
    ("offset", "check"), [(301, "stale_timestamp"), (-301, "future_timestamp")]
)
def test_timestamps_beyond_five_minutes_either_way_are_refused(offset: int, check: str) -> None:
    req = request(std_signature())

    assert failed_check(req, verifier(now=T + offset)) == check


@pytest.mark.parametrize("offset", [300, -300])
def test_timestamps_within_five_minutes_are_accepted(offset: int) -> None:
    assert verifier(now=T + offset).verify(request(std_signature()))


@pytest.mark.parametrize(
    ("signature", "msg_id", "ts"),
    [
        pytest.param(None, MSG_ID, str(T), id="signature"),
        pytest.param(std_signature(), None, str(T), id="id"),
        pytest.param(std_signature(), MSG_ID, None, id="timestamp"),
    ],
)
def test_missing_headers_are_refused(
    signature: str | None, msg_id: str | None, ts: str | None
) -> None:
    assert failed_check(request(signature, msg_id=msg_id, ts=ts)) == "missing_header"


@pytest.mark.parametrize(
    ("signature", "ts"),
    [
        pytest.param("no-version-here", str(T), id="no-comma"),
        pytest.param("v1,***", str(T), id="not-base64"),
        pytest.param("v2," + base64.b64encode(b"x" * 32).decode(), str(T), id="no-v1"),
        pytest.param(std_signature(), "2024-09-12T10:40:00Z", id="timestamp-not-a-number"),
    ],
)
def test_malformed_headers_are_refused(signature: str, ts: str) -> None:
    assert failed_check(request(signature, ts=ts)) == "malformed_header"


def test_signed_but_malformed_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        verifier().verify(request(std_signature(body="{"), body="{"))


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not*base64", ""])
def test_bad_secrets_are_refused_at_construction(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        StandardWebhooksVerifier(secret)
