"""Realistic signed sample webhooks of every provider, fired at a source (demos and tests)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from interlink.webhooks.inbound import senders

__all__ = ["PROVIDERS", "signed_sample"]

PROVIDERS = (
    "stripe",
    "github",
    "shopify",
    "slack",
    "twilio",
    "hubspot",
    "standard-webhooks",
    "svix",
    "hmac",
)


def signed_sample(
    provider: str, secret: str, signed_url: str, options: Mapping[str, Any]
) -> senders.SignedRequest:
    """A fresh sample event of ``provider`` signed with ``secret`` as the provider would.

    ``signed_url`` is the public URL the provider would post to (Twilio and HubSpot sign it).

    Raises:
        ValueError: ``provider`` has no sample.
    """
    if provider == "stripe":
        return senders.sign_stripe(secret)
    if provider == "github":
        return senders.sign_github(secret)
    if provider == "shopify":
        return senders.sign_shopify(secret)
    if provider == "slack":
        return senders.sign_slack(secret)
    if provider == "twilio":
        return senders.sign_twilio(secret, signed_url)
    if provider == "hubspot":
        return senders.sign_hubspot(secret, signed_url)
    if provider == "standard-webhooks":
        return senders.sign_standard_webhooks(secret)
    if provider == "svix":
        return senders.sign_standard_webhooks(secret, header_prefix="svix")
    if provider == "hmac":
        return senders.sign_hmac(secret, options, {"event": "sample", "id": secrets.token_hex(8)})
    raise ValueError(f"no sample webhook for provider {provider!r}")
