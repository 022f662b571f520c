"""Interlink's own signers round-trip through the verifiers (built from the default registry)."""

from __future__ import annotations

import base64
import time

import pytest

from interlink.webhooks.inbound import senders
from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    VerificationError,
    Verified,
    default_registry,
)
from interlink.webhooks.inbound.verifiers.standard_webhooks import HeaderPrefix

SECRET = "sender-round-trip-secret"
WHSEC = "whsec_" + base64.b64encode(b"sender-round-trip-key-32-bytes!!").decode()
URL = "https://hub.example.com/in/src_77"


def verify(
    provider: str, secret: str, signed: senders.SignedRequest, url: str = URL, **options: object
) -> Verified:
    request = InboundRequest(
        "POST", url, url.removeprefix("https://hub.example.com"), signed.headers, signed.body
    )
    return default_registry().create(provider, secret, options).verify(request)


def test_stripe_invoice_paid() -> None:
    verified = verify("stripe", SECRET, senders.sign_stripe(SECRET))

    assert verified.event_type == "invoice.paid"
    assert verified.delivery_id is not None
    assert verified.delivery_id.startswith("evt_")
    assert verified.payload["data"]["object"]["object"] == "invoice"


def test_github_push() -> None:
    verified = verify("github", SECRET, senders.sign_github(SECRET))

    assert verified.event_type == "push"
    assert verified.payload["ref"] == "refs/heads/main"
    assert verified.delivery_id


def test_shopify_orders_create() -> None:
    verified = verify("shopify", SECRET, senders.sign_shopify(SECRET, webhook_id="wh-1"))

    assert verified.event_type == "orders/create"
    assert verified.delivery_id == "wh-1"
    assert verified.payload["line_items"][0]["quantity"] == 2


def test_slack_event_callback() -> None:
    verified = verify("slack", SECRET, senders.sign_slack(SECRET))

    assert verified.event_type == "app_mention"
    assert verified.delivery_id is not None
    assert verified.delivery_id.startswith("Ev")


def test_twilio_sms_form_post() -> None:
    verified = verify("twilio", SECRET, senders.sign_twilio(SECRET, URL), URL)

    assert verified.event_type == "message.received"
    assert verified.payload["Body"] == "Is my order #1042 shipped?"
    assert verified.delivery_id


def test_twilio_json_body() -> None:
    url, signed = senders.sign_twilio_json(
        SECRET, URL + "?tenant=acme", {"type": "com.twilio.test", "n": 1}
    )

    verified = verify("twilio", SECRET, signed, url)

    assert "bodySHA256=" in url
    assert "tenant=acme" in url
    assert verified.payload == {"type": "com.twilio.test", "n": 1}


def test_hubspot_contact_property_change() -> None:
    url = URL + "?portal=62515&next=%2Fcontacts%3A1"

    verified = verify("hubspot", SECRET, senders.sign_hubspot(SECRET, url), url)

    assert verified.event_type == "contact.propertyChange"
    assert len(verified.payload) == 2


@pytest.mark.parametrize(
    ("provider", "prefix"), [("standard-webhooks", "webhook"), ("svix", "svix")]
)
def test_standard_webhooks_invoice_paid(provider: str, prefix: HeaderPrefix) -> None:
    signed = senders.sign_standard_webhooks(WHSEC, msg_id="msg_abc", header_prefix=prefix)

    verified = verify(provider, WHSEC, signed)

    assert verified.event_type == "invoice.paid"
    assert verified.delivery_id == "msg_abc"


def test_generic_hmac_with_timestamp() -> None:
    options = {
        "header": "X-Signature",
        "encoding": "base64",
        "prefix": "v1=",
        "signed_content": "timestamp.body",
        "timestamp_header": "X-Timestamp",
        "id_header": "X-Delivery",
        "event_type_header": "X-Event",
    }
    signed = senders.sign_hmac(
        SECRET, options, {"order": "ord_1"}, delivery_id="d-1", event_type="order.paid"
    )

    verified = verify("hmac", SECRET, signed, **options)

    assert (verified.delivery_id, verified.event_type, verified.payload) == (
        "d-1",
        "order.paid",
        {"order": "ord_1"},
    )


def test_signed_requests_fail_under_another_secret() -> None:
    with pytest.raises(VerificationError):
        verify("stripe", "whsec_other", senders.sign_stripe(SECRET))
    with pytest.raises(VerificationError):
        verify(
            "standard-webhooks",
            "whsec_" + base64.b64encode(b"x" * 32).decode(),
            senders.sign_standard_webhooks(WHSEC),
        )


def test_samples_get_fresh_ids_so_deliveries_do_not_collide() -> None:
    first, second = senders.sample_stripe_event(), senders.sample_stripe_event()

    assert first["id"] != second["id"]
    assert senders.sample_slack_event()["event_id"] != senders.sample_slack_event()["event_id"]
    assert senders.sample_twilio_sms()["MessageSid"] != senders.sample_twilio_sms()["MessageSid"]


def test_default_timestamps_are_now() -> None:
    headers, _ = senders.sign_slack(SECRET)

    assert abs(int(headers["X-Slack-Request-Timestamp"]) - time.time()) < 60
