"""The verifier registry, the request type, and the body digest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pytest

from interlink.webhooks.inbound.verifiers import (
    InboundRequest,
    UnknownProviderError,
    VerificationError,
    Verified,
    Verifier,
    VerifierRegistry,
    body_digest,
    default_registry,
)

BUILT_IN = [
    "github",
    "hmac",
    "hubspot",
    "shopify",
    "slack",
    "standard-webhooks",
    "stripe",
    "svix",
    "twilio",
]
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_default_registry_holds_every_built_in_provider() -> None:
    assert list(default_registry()) == BUILT_IN


@pytest.mark.parametrize(
    ("provider", "secret", "options"),
    [
        ("stripe", "whsec_x", {}),
        ("github", "s", {}),
        ("shopify", "s", {}),
        ("slack", "s", {"tolerance_seconds": 60}),
        ("twilio", "s", {}),
        ("hubspot", "s", {}),
        ("standard-webhooks", WHSEC, {}),
        ("svix", WHSEC, {}),
        ("hmac", "s", {"header": "X-Sig"}),
    ],
)
def test_each_built_in_provider_builds_a_verifier_named_after_it(
    provider: str, secret: str, options: Mapping[str, Any]
) -> None:
    assert default_registry().create(provider, secret, options).provider == provider


@pytest.mark.parametrize("provider", ["github", "shopify", "twilio"])
def test_providers_without_options_refuse_any(provider: str) -> None:
    with pytest.raises(ValueError, match="takes no options"):
        default_registry().create(provider, "s", {"tolerance_seconds": 10})


@pytest.mark.parametrize("provider", ["stripe", "slack", "hubspot", "standard-webhooks", "svix"])
def test_timestamped_providers_validate_their_tolerance_option(provider: str) -> None:
    with pytest.raises(ValueError, match="tolerance_seconds"):
        default_registry().create(provider, WHSEC, {"tolerance_seconds": -5})
    with pytest.raises(ValueError, match="tolernce"):
        default_registry().create(provider, WHSEC, {"tolernce": 5})


@pytest.mark.parametrize("provider", BUILT_IN)
def test_empty_secret_is_refused(provider: str) -> None:
    options = {"header": "X-Sig"} if provider == "hmac" else {}

    with pytest.raises(ValueError, match="secret"):
        default_registry().create(provider, "", options)


def test_unknown_provider_is_a_lookup_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError, match="stripe"):
        default_registry().create("paypal", "s")


class AlwaysVerified:
    provider = "test-provider"

    def verify(self, request: InboundRequest) -> Verified:
        return Verified(delivery_id="d1", event_type="t", timestamp=None, payload=None)


def always_verified(secret: str, options: Mapping[str, Any]) -> Verifier:
    return AlwaysVerified()


def test_a_new_provider_is_one_registration_and_registries_are_independent() -> None:
    mine = default_registry()
    mine.register("test-provider", always_verified)

    assert "test-provider" in mine
    assert "test-provider" not in default_registry()
    assert len(mine) == len(BUILT_IN) + 1


def test_registering_a_name_twice_is_refused() -> None:
    registry = VerifierRegistry()
    registry.register("test-provider", always_verified)

    with pytest.raises(ValueError, match="already registered"):
        registry.register("test-provider", always_verified)


def test_headers_are_looked_up_in_any_case() -> None:
    req = InboundRequest(
        "POST",
        "https://h.example/in/s",
        "/in/s",
        {"X-GitHub-Event": "push", "content-TYPE": "Application/JSON; charset=utf-8"},
    )

    assert req.header("x-github-event") == "push"
    assert req.header("X-GITHUB-EVENT") == "push"
    assert req.headers["x-github-event"] == "push"
    assert req.header("X-Missing") is None
    assert req.media_type == "application/json"


def test_body_digest_is_sha256_hex() -> None:
    assert body_digest(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert body_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_verification_error_carries_its_check() -> None:
    error = VerificationError("missing_header", "the X-Sig header is missing")

    assert error.check == "missing_header"
    assert str(error) == "the X-Sig header is missing"
