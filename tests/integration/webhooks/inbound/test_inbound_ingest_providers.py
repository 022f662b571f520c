"""Requests signed by the providers' own libraries pass ``POST /in/{source_id}``; tampered fail."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import standardwebhooks
import stripe
import svix
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from tests.integration.webhooks.inbound.conftest import list_events

MakeSource = Callable[..., Awaitable[dict[str, Any]]]
WHSEC = "whsec_" + base64.b64encode(b"inbound-route-test-key-32-bytes!").decode()


async def _post(client: httpx.AsyncClient, source: dict[str, Any], body: bytes, headers: Any):
    return await client.post(f"/in/{source['id']}", content=body, headers=headers)


async def test_stripe_signature_made_as_stripe_documents_is_accepted_and_tamper_refused(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    secret = "whsec_stripe_route_secret"
    source = await make_source("stripe", secret)
    event = {"id": "evt_1PqX", "object": "event", "type": "invoice.paid", "data": {"object": {}}}
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(time.time())
    )
    # The same request passes Stripe's own verifier, so the header is genuinely Stripe's format.
    assert stripe.Webhook.construct_event(body, header, secret)["id"] == "evt_1PqX"

    accepted = await _post(client, source, body.encode(), {"Stripe-Signature": header})
    tampered = await _post(
        client,
        source,
        body.replace("invoice.paid", "invoice.voided").encode(),
        {"Stripe-Signature": header},
    )

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert tampered.status_code == 401
    assert tampered.headers["content-type"] == "application/problem+json"
    assert tampered.json()["check"] == "signature_mismatch"
    events = await list_events(client, tenant, source["id"])
    by_status = {row["status"]: row for row in events}
    assert by_status["accepted"]["event_type"] == "invoice.paid"
    assert by_status["accepted"]["delivery_id"] == "evt_1PqX"
    assert by_status["rejected"]["failed_check"] == "signature_mismatch"


async def test_slack_sdk_signature_is_accepted_and_challenge_answered(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    source = await make_source("slack", secret)
    signer = SignatureVerifier(secret)

    def signed(body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signer.generate_signature(timestamp=ts, body=body),
            "Content-Type": "application/json",
        }

    challenge = json.dumps(
        {
            "type": "url_verification",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        }
    ).encode()
    event = json.dumps(
        {"type": "event_callback", "event_id": "Ev08MFMKH6", "event": {"type": "app_mention"}}
    ).encode()
    form = urlencode({"command": "/weather", "text": "94070", "team_id": "T0001"}).encode()
    form_headers = {**signed(form), "Content-Type": "application/x-www-form-urlencoded"}

    answered = await _post(client, source, challenge, signed(challenge))
    accepted = await _post(client, source, event, signed(event))
    command = await _post(client, source, form, form_headers)
    tampered = await _post(client, source, event + b" ", signed(event))

    assert answered.status_code == 200
    assert answered.text == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert command.status_code == 200
    assert command.json()["status"] == "accepted"
    assert tampered.status_code == 401
    types = {row["event_type"] for row in await list_events(client, tenant, source["id"])}
    assert {"app_mention", "slash_command"} <= types


async def test_twilio_request_validator_signature_is_accepted_behind_the_public_url(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    token = "12345"
    source = await make_source("twilio", token)
    params = {"From": "+14158675310", "To": "+14155550100", "Body": "Ahoy", "MessageSid": "SM1"}
    # Twilio signs the public URL; Interlink rebuilds it from INTERLINK_PUBLIC_URL.
    signature = RequestValidator(token).compute_signature(source["ingest_url"], params)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}

    accepted = await _post(client, source, urlencode(params).encode(), headers)
    forged = await _post(client, source, urlencode({**params, "Body": "Avast"}).encode(), headers)

    assert accepted.status_code == 200, accepted.text
    assert forged.status_code == 401
    assert forged.json()["check"] == "signature_mismatch"


async def test_standardwebhooks_and_svix_signers_are_accepted(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    standard = await make_source("standard-webhooks", WHSEC)
    svix_source = await make_source("svix", WHSEC)
    body = json.dumps({"type": "invoice.paid", "data": {"id": "inv_1"}})
    now = int(time.time())
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(now, tz=UTC)
    sw_signature = standardwebhooks.Webhook(WHSEC).sign("msg_sw_1", moment, body)
    svix_signature = svix.Webhook(WHSEC).sign("msg_svix_1", moment, body)
    sw_headers = {
        "webhook-id": "msg_sw_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sw_signature,
        "content-type": "application/json",
    }
    svix_headers = {
        "svix-id": "msg_svix_1",
        "svix-timestamp": str(now),
        "svix-signature": svix_signature,
        "content-type": "application/json",
    }

    sw = await _post(client, standard, body.encode(), sw_headers)
    sx = await _post(client, svix_source, body.encode(), svix_headers)
    sw_tampered = await _post(client, standard, body.encode() + b"\n", sw_headers)
    sx_stale = await _post(
        client,
        svix_source,
        body.encode(),
        {
            **svix_headers,
            "svix-timestamp": str(now - 3600),
            "svix-signature": svix.Webhook(WHSEC).sign(
                "msg_svix_1", datetime.fromtimestamp(now - 3600, tz=UTC), body
            ),
        },
    )

    assert sw.status_code == 200
    assert sx.status_code == 200
    assert sw_tampered.status_code == 401
    assert sx_stale.status_code == 401
    assert sx_stale.json()["check"] == "stale_timestamp"
    [event] = await list_events(client, tenant, standard["id"], status="accepted")
    assert event["delivery_id"] == "msg_sw_1"


async def test_github_documented_vector_passes_the_signature_check(
    client: httpx.AsyncClient, tenant: str, make_source: MakeSource
) -> None:
    # GitHub's documented example: this secret and body give this signature.
    source = await make_source("github", "It's a Secret to Everybody")
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }

    genuine = await _post(client, source, b"Hello, World!", headers)
    forged = await _post(client, source, b"Hello, World?", headers)

    # Authentic but not JSON: 400 (signature passed), while the forged body is 401.
    assert genuine.status_code == 400
    assert genuine.json()["check"] == "malformed_payload"
    assert forged.status_code == 401
    rows = await list_events(client, tenant, source["id"], status="rejected")
    assert {row["verification"] for row in rows} == {"payload_error", "failed"}
