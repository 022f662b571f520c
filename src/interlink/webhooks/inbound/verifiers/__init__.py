"""Inbound webhook signature verifiers, one small module per provider, and their registry.

This package depends on nothing else in Interlink but ``interlink.exact_json`` (JSON that keeps
integers exact; a leaf module). A route uses it like this::

    registry = default_registry()               # once, held by the app
    verifier = registry.create(source.provider, secret, source.options)
    request = InboundRequest(method, public_url, path_qs, headers, body)
    try:
        verified = verifier.verify(request)
    except PayloadError:        # authentic but unparseable: 400
        ...
    except VerificationError:   # not authentic: 401 (exc.check says which check failed)
        ...
    delivery_id = verified.delivery_id or body_digest(request.body)

Adding a provider: write ``verifiers/<name>.py`` with a class that has ``provider``,
``verify(request)`` and a ``from_options(secret, options)`` factory, then add one line to
``_BUILT_IN``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from interlink.webhooks.inbound.verifiers.base import (
    ChallengeResponse,
    Clock,
    InboundRequest,
    PayloadError,
    VerificationError,
    Verified,
    Verifier,
    body_digest,
)
from interlink.webhooks.inbound.verifiers.github import GitHubVerifier
from interlink.webhooks.inbound.verifiers.hmac import HmacOptions, HmacVerifier
from interlink.webhooks.inbound.verifiers.hubspot import HubSpotVerifier
from interlink.webhooks.inbound.verifiers.shopify import ShopifyVerifier
from interlink.webhooks.inbound.verifiers.slack import SlackVerifier
from interlink.webhooks.inbound.verifiers.standard_webhooks import StandardWebhooksVerifier
from interlink.webhooks.inbound.verifiers.stripe import StripeVerifier
from interlink.webhooks.inbound.verifiers.twilio import TwilioVerifier

VerifierFactory = Callable[[str, Mapping[str, Any]], Verifier]
"""Builds a verifier from a source's secret and stored options; raises ValueError on bad options."""


class UnknownProviderError(LookupError):
    """No verifier is registered under the requested provider name."""


class VerifierRegistry:
    """Maps provider names to verifier factories. One instance per app; no global state.

    Example::

        registry = VerifierRegistry()
        registry.register("stripe", StripeVerifier.from_options)
        verifier = registry.create("stripe", "whsec_...", {})
    """

    def __init__(self) -> None:
        self._factories: dict[str, VerifierFactory] = {}

    def register(self, provider: str, factory: VerifierFactory) -> None:
        """Register ``factory`` under ``provider``.

        Raises:
            ValueError: ``provider`` is empty or already registered.
        """
        if not provider:
            raise ValueError("a provider name must not be empty")
        if provider in self._factories:
            raise ValueError(f"a verifier is already registered for provider {provider!r}")
        self._factories[provider] = factory

    def create(
        self, provider: str, secret: str, options: Mapping[str, Any] | None = None
    ) -> Verifier:
        """Build the verifier for ``provider`` with ``secret`` and ``options``.

        Raises:
            UnknownProviderError: nothing is registered under ``provider``.
            ValueError: the secret is empty or malformed, or an option is invalid (the message
                names the field, never the secret).
        """
        try:
            factory = self._factories[provider]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise UnknownProviderError(
                f"no verifier for provider {provider!r}; known: {known}"
            ) from None
        return factory(secret, options or {})

    def __contains__(self, provider: object) -> bool:
        return provider in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))

    def __len__(self) -> int:
        return len(self._factories)


_BUILT_IN: tuple[tuple[str, VerifierFactory], ...] = (
    ("stripe", StripeVerifier.from_options),
    ("github", GitHubVerifier.from_options),
    ("shopify", ShopifyVerifier.from_options),
    ("slack", SlackVerifier.from_options),
    ("twilio", TwilioVerifier.from_options),
    ("hubspot", HubSpotVerifier.from_options),
    ("standard-webhooks", StandardWebhooksVerifier.from_options),
    ("svix", StandardWebhooksVerifier.svix_from_options),
    ("hmac", HmacVerifier.from_options),
)


def default_registry() -> VerifierRegistry:
    """Return a new registry holding every built-in provider (see ``_BUILT_IN``)."""
    registry = VerifierRegistry()
    for provider, factory in _BUILT_IN:
        registry.register(provider, factory)
    return registry


__all__ = [
    "ChallengeResponse",
    "Clock",
    "GitHubVerifier",
    "HmacOptions",
    "HmacVerifier",
    "HubSpotVerifier",
    "InboundRequest",
    "PayloadError",
    "ShopifyVerifier",
    "SlackVerifier",
    "StandardWebhooksVerifier",
    "StripeVerifier",
    "TwilioVerifier",
    "UnknownProviderError",
    "VerificationError",
    "Verified",
    "Verifier",
    "VerifierFactory",
    "VerifierRegistry",
    "body_digest",
    "default_registry",
]
