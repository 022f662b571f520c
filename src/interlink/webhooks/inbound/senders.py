"""Interlink's own signers: realistic, correctly signed provider requests for demos and tests.

Each ``sign_*`` function returns a :class:`SignedRequest` (headers and body bytes) that the
matching verifier accepts, signed the way the provider signs. Each ``sample_*`` function returns
a fresh, realistic payload with new ids, so two calls never collide in deduplication.

Example::

    headers, body = sign_stripe("whsec_...")
    httpx.post(ingest_url, headers=headers, content=body)

These are not independent evidence that a verifier is right: the tests check the verifiers
against the providers' own SDKs and documented examples instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from interlink.webhooks.inbound.verifiers.hmac import HmacOptions
from interlink.webhooks.inbound.verifiers.hubspot import normalize_uri
from interlink.webhooks.inbound.verifiers.standard_webhooks import HeaderPrefix, decode_secret

_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


class SignedRequest(NamedTuple):
    """A request body and the headers to send with it."""

    headers: dict[str, str]
    body: bytes


def _token(length: int = 14) -> str:
    return secrets.token_hex(length)[:length]


def _now() -> int:
    return int(time.time())


def _json_body(payload: Any, *, indent: int | None = None) -> bytes:
    separators = None if indent else (",", ":")
    return json.dumps(payload, indent=indent, separators=separators).encode("utf-8")


# --- Stripe --------------------------------------------------------------------------------------


def sample_stripe_event(created: int | None = None) -> dict[str, Any]:
    """A Stripe ``invoice.paid`` event (API version 2024-06-20 shape, trimmed)."""
    created = _now() if created is None else created
    invoice_id = f"in_{_token(24)}"
    return {
        "id": f"evt_{_token(24)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "type": "invoice.paid",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {
            "object": {
                "id": invoice_id,
                "object": "invoice",
                "customer": "cus_QZ3mT0u8S1vXkA",
                "currency": "usd",
                "amount_due": 4900,
                "amount_paid": 4900,
                "amount_remaining": 0,
                "status": "paid",
                "paid": True,
                "number": "A1B2C3D4-0007",
                "billing_reason": "subscription_cycle",
                "subscription": "sub_1PqYfGLkdIwHu7ix0a2b3c4d",
                "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_1Nv0FG/test_{invoice_id}",
                "lines": {
                    "object": "list",
                    "data": [
                        {
                            "id": f"il_{_token(24)}",
                            "object": "line_item",
                            "amount": 4900,
                            "currency": "usd",
                            "description": "1 \u00d7 Team plan (at $49.00 / month)",
                            "quantity": 1,
                        }
                    ],
                    "has_more": False,
                    "total_count": 1,
                },
                "created": created,
            }
        },
    }


def sign_stripe(
    secret: str, payload: Mapping[str, Any] | None = None, timestamp: int | None = None
) -> SignedRequest:
    """Sign ``payload`` (default: :func:`sample_stripe_event`) as Stripe does."""
    timestamp = _now() if timestamp is None else timestamp
    body = _json_body(sample_stripe_event(timestamp) if payload is None else payload, indent=2)
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SignedRequest(
        {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": f"t={timestamp},v1={digest.hexdigest()}",
        },
        body,
    )


# --- GitHub --------------------------------------------------------------------------------------


def sample_github_push() -> dict[str, Any]:
    """A GitHub ``push`` event payload (trimmed)."""
    before, after = secrets.token_hex(20), secrets.token_hex(20)
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "compare": f"https://github.com/acme/shop-api/compare/{before[:12]}...{after[:12]}",
        "repository": {
            "id": 812345678,
            "name": "shop-api",
            "full_name": "acme/shop-api",
            "private": True,
            "owner": {"login": "acme", "id": 1234567, "type": "Organization"},
            "default_branch": "main",
        },
        "pusher": {"name": "octocat", "email": "octocat@users.noreply.github.com"},
        "sender": {"login": "octocat", "id": 583231, "type": "User"},
        "head_commit": {
            "id": after,
            "message": "Fix rounding of invoice totals",
            "timestamp": "2024-09-12T10:21:04+02:00",
            "author": {"name": "Mona Octocat", "email": "octocat@users.noreply.github.com"},
            "added": [],
            "removed": [],
            "modified": ["billing/totals.py"],
        },
        "commits": [
            {
                "id": after,
                "message": "Fix rounding of invoice totals",
                "distinct": True,
                "url": f"https://github.com/acme/shop-api/commit/{after}",
            }
        ],
    }


def sign_github(
    secret: str,
    payload: Mapping[str, Any] | None = None,
    *,
    event: str = "push",
    delivery_id: str | None = None,
) -> SignedRequest:
    """Sign ``payload`` (default: :func:`sample_github_push`) as GitHub does."""
    body = _json_body(sample_github_push() if payload is None else payload)
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SignedRequest(
        {
            "Content-Type": _JSON,
            "User-Agent": "GitHub-Hookshot/2f3e4d5",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "492837461",
            "X-Hub-Signature-256": f"sha256={digest}",
        },
        body,
    )


# --- Shopify -------------------------------------------------------------------------------------


def sample_shopify_order() -> dict[str, Any]:
    """A Shopify ``orders/create`` payload (trimmed)."""
    order_id = secrets.randbelow(10**12) + 5 * 10**12
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{1000 + secrets.randbelow(9000)}",
        "email": "jane.doe@example.com",
        "created_at": "2024-09-12T10:24:51-04:00",
        "currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": None,
        "subtotal_price": "58.00",
        "total_tax": "4.64",
        "total_price": "62.64",
        "customer": {
            "id": 7238123450001,
            "email": "jane.doe@example.com",
            "first_name": "Jane",
            "last_name": "Doe",
        },
        "line_items": [
            {
                "id": order_id + 1,
                "title": "Organic cotton tee",
                "sku": "TEE-ORG-M-BLK",
                "quantity": 2,
                "price": "29.00",
            }
        ],
    }


def sign_shopify(
    secret: str,
    payload: Mapping[str, Any] | None = None,
    *,
    topic: str = "orders/create",
    shop_domain: str = "acme-apparel.myshopify.com",
    webhook_id: str | None = None,
    event_id: str | None = None,
) -> SignedRequest:
    """Sign ``payload`` (default: :func:`sample_shopify_order`) as Shopify does."""
    body = _json_body(sample_shopify_order() if payload is None else payload)
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return SignedRequest(
        {
            "Content-Type": _JSON,
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode("ascii"),
            "X-Shopify-Shop-Domain": shop_domain,
            "X-Shopify-API-Version": "2024-07",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": "2024-09-12T14:24:52.312Z",
        },
        body,
    )


# --- Slack ---------------------------------------------------------------------------------------


def sample_slack_event(event_time: int | None = None) -> dict[str, Any]:
    """A Slack Events API ``event_callback`` carrying an ``app_mention``."""
    event_time = _now() if event_time is None else event_time
    return {
        "token": "XXYYZZ1234abcd",
        "team_id": "T061EG9R6",
        "api_app_id": "A0PNCHHK2",
        "event": {
            "type": "app_mention",
            "user": "U061F7AUR",
            "text": "<@U0LAN0Z89> is the sync for ACME finished?",
            "ts": f"{event_time}.000200",
            "channel": "C0LAN2Q65",
            "event_ts": f"{event_time}.000200",
        },
        "type": "event_callback",
        "event_id": f"Ev{_token(10).upper()}",
        "event_time": event_time,
        "authorizations": [
            {
                "team_id": "T061EG9R6",
                "user_id": "U0LAN0Z89",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }


def sign_slack(
    secret: str, payload: Mapping[str, Any] | None = None, timestamp: int | None = None
) -> SignedRequest:
    """Sign a JSON ``payload`` (default: :func:`sample_slack_event`) as Slack does."""
    timestamp = _now() if timestamp is None else timestamp
    body = _json_body(sample_slack_event(timestamp) if payload is None else payload)
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return SignedRequest(
        {
            "Content-Type": _JSON,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": f"v0={digest}",
        },
        body,
    )


# --- Twilio --------------------------------------------------------------------------------------


def sample_twilio_sms() -> dict[str, str]:
    """The form parameters of an incoming-SMS webhook."""
    sid = f"SM{secrets.token_hex(16)}"
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": "Is my order #1042 shipped?",
        "FromCountry": "US",
        "To": "+14155550100",
        "MessagingServiceSid": "MG9752274e9e519418a7406176694466fa",
        "ToZip": "94107",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC3f4b0c2a9e8d7c6b5a4f3e2d1c0b9a8f",
        "From": "+14155550123",
        "ApiVersion": "2010-04-01",
    }


def _twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_twilio(
    auth_token: str, url: str, params: Mapping[str, str] | None = None
) -> SignedRequest:
    """Sign a form post of ``params`` (default: :func:`sample_twilio_sms`) to ``url``."""
    params = sample_twilio_sms() if params is None else params
    return SignedRequest(
        {
            "Content-Type": _FORM,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "X-Twilio-Signature": _twilio_signature(auth_token, url, params),
        },
        urlencode(params).encode("ascii"),
    )


def sign_twilio_json(
    auth_token: str, url: str, payload: Mapping[str, Any]
) -> tuple[str, SignedRequest]:
    """Sign a JSON ``payload`` as Twilio does; return the URL (with ``bodySHA256``) and request."""
    body = _json_body(payload)
    parts = urlsplit(url)
    extra = urlencode({"bodySHA256": hashlib.sha256(body).hexdigest()})
    query = f"{parts.query}&{extra}" if parts.query else extra
    signed_url = urlunsplit(parts._replace(query=query))
    return signed_url, SignedRequest(
        {
            "Content-Type": _JSON,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "X-Twilio-Signature": _twilio_signature(auth_token, signed_url, {}),
        },
        body,
    )


# --- HubSpot -------------------------------------------------------------------------------------


def sample_hubspot_events(occurred_at_ms: int | None = None) -> list[dict[str, Any]]:
    """A HubSpot webhook batch of two ``contact.propertyChange`` events."""
    occurred_at_ms = _now() * 1000 if occurred_at_ms is None else occurred_at_ms
    base_event_id = 100 + secrets.randbelow(10**9)
    common = {
        "subscriptionId": 2881778,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": occurred_at_ms,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 1246965,
        "changeSource": "CRM_UI",
    }
    return [
        {
            **common,
            "eventId": base_event_id,
            "propertyName": "lifecyclestage",
            "propertyValue": "customer",
        },
        {
            **common,
            "eventId": base_event_id + 1,
            "propertyName": "email",
            "propertyValue": "jane.doe@example.com",
        },
    ]


def sign_hubspot(
    client_secret: str,
    url: str,
    events: Sequence[Mapping[str, Any]] | None = None,
    timestamp_ms: int | None = None,
    *,
    method: str = "POST",
) -> SignedRequest:
    """Sign ``events`` (default: :func:`sample_hubspot_events`) posted to ``url``, v3 signature."""
    timestamp_ms = _now() * 1000 if timestamp_ms is None else timestamp_ms
    body = _json_body(list(sample_hubspot_events() if events is None else events))
    source = (method + normalize_uri(url)).encode("utf-8") + body + str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode("utf-8"), source, hashlib.sha256).digest()
    return SignedRequest(
        {
            "Content-Type": _JSON,
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
            "X-HubSpot-Request-Timestamp": str(timestamp_ms),
            "X-HubSpot-Signature-v3": base64.b64encode(digest).decode("ascii"),
        },
        body,
    )


# --- Standard Webhooks / Svix --------------------------------------------------------------------


def sample_standard_webhooks_event(timestamp: int | None = None) -> dict[str, Any]:
    """A Standard Webhooks ``invoice.paid`` event, in Interlink's outbound body shape."""
    timestamp = _now() if timestamp is None else timestamp
    return {
        "type": "invoice.paid",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
        "data": {
            "id": f"inv_{_token(20)}",
            "customer_id": "cus_8e1c0d2b",
            "status": "paid",
            "amount": 4900,
            "currency": "USD",
        },
    }


def sign_standard_webhooks(
    secret: str,
    payload: Mapping[str, Any] | None = None,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    header_prefix: HeaderPrefix = "webhook",
) -> SignedRequest:
    """Sign ``payload`` (default: :func:`sample_standard_webhooks_event`) per Standard Webhooks.

    ``secret`` is ``whsec_<base64>``; ``header_prefix="svix"`` names the headers as Svix does.
    """
    timestamp = _now() if timestamp is None else timestamp
    msg_id = msg_id or f"msg_{_token(27)}"
    body = _json_body(sample_standard_webhooks_event(timestamp) if payload is None else payload)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return SignedRequest(
        {
            "Content-Type": _JSON,
            f"{header_prefix}-id": msg_id,
            f"{header_prefix}-timestamp": str(timestamp),
            f"{header_prefix}-signature": "v1," + base64.b64encode(digest).decode("ascii"),
        },
        body,
    )


# --- Generic HMAC --------------------------------------------------------------------------------

_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def sign_hmac(
    secret: str,
    options: HmacOptions | Mapping[str, Any],
    payload: Any = None,
    *,
    timestamp: int | None = None,
    delivery_id: str | None = None,
    event_type: str | None = None,
) -> SignedRequest:
    """Sign a JSON ``payload`` the way a generic HMAC source with ``options`` expects."""
    opts = options if isinstance(options, HmacOptions) else HmacOptions.model_validate(options)
    body = _json_body({"event": "ping"} if payload is None else payload)
    headers = {"Content-Type": _JSON}
    signed = body
    if opts.timestamp_header is not None:
        timestamp = _now() if timestamp is None else timestamp
        headers[opts.timestamp_header] = str(timestamp)
        signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, _DIGESTS[opts.algorithm]).digest()
    encoded = digest.hex() if opts.encoding == "hex" else base64.b64encode(digest).decode("ascii")
    headers[opts.header] = opts.prefix + encoded
    if opts.id_header is not None:
        headers[opts.id_header] = delivery_id or str(uuid.uuid4())
    if opts.event_type_header is not None and event_type is not None:
        headers[opts.event_type_header] = event_type
    return SignedRequest(headers, body)
