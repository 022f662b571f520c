"""The catalog shipped in the package: it loads, and its providers say what their docs say."""

from __future__ import annotations

import pytest

from interlink.connections.catalog import (
    ApiKeyAuth,
    BasicAuth,
    Catalog,
    LinkHeaderPagination,
    NextUrlPagination,
    OAuth2Auth,
    StartingAfterPagination,
    load_catalog,
)

REQUIRED = {
    "stripe",
    "salesforce",
    "hubspot",
    "github",
    "google",
    "slack",
    "shopify",
    "sendgrid",
    "quickbooks",
    "xero",
    "rest",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog([])


def oauth2(catalog: Catalog, name: str) -> OAuth2Auth:
    mode = catalog[name].auth_mode("oauth2")
    assert isinstance(mode, OAuth2Auth)
    return mode


def test_every_required_provider_is_shipped(catalog: Catalog) -> None:
    assert REQUIRED <= set(catalog)
    for name in REQUIRED:
        assert catalog[name].name == name
        assert catalog.source_of(name) == "providers.yaml"


def test_oauth_endpoints_are_the_documented_ones(catalog: Catalog) -> None:
    assert oauth2(catalog, "hubspot").token_url == "https://api.hubapi.com/oauth/v1/token"
    assert oauth2(catalog, "salesforce").authorize_url == (
        "https://login.salesforce.com/services/oauth2/authorize"
    )
    google = oauth2(catalog, "google")
    assert google.token_url == "https://oauth2.googleapis.com/token"
    assert google.authorize_params["access_type"] == "offline"
    assert google.authorize_params["prompt"] == "consent"
    github = oauth2(catalog, "github")
    assert github.token_url == "https://github.com/login/oauth/access_token"
    assert github.token_headers == {"Accept": "application/json"}
    assert oauth2(catalog, "xero").token_url == "https://identity.xero.com/connect/token"
    assert oauth2(catalog, "quickbooks").token_url == (
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    )


def test_provider_specific_oauth_rules(catalog: Catalog) -> None:
    assert oauth2(catalog, "slack").scope_separator == ","
    assert oauth2(catalog, "shopify").scope_separator == ","
    assert oauth2(catalog, "salesforce").pkce is True
    assert oauth2(catalog, "hubspot").pkce is False
    salesforce = oauth2(catalog, "salesforce").token_response
    assert salesforce.expires_in is None
    assert salesforce.config_fields["instance_url"] == "instance_url"
    assert oauth2(catalog, "quickbooks").callback_config == {"realm_id": "realmId"}
    assert oauth2(catalog, "quickbooks").token_auth_method == "client_secret_basic"


def test_stripe_auth_version_and_paging(catalog: Catalog) -> None:
    stripe = catalog["stripe"]
    key = stripe.auth_mode("api_key")
    assert isinstance(key, ApiKeyAuth)
    assert (key.in_, key.name, key.prefix) == ("header", "Authorization", "Bearer ")
    basic = stripe.auth_mode("basic")
    assert isinstance(basic, BasicAuth)
    assert (basic.username_field, basic.password_field) == ("api_key", None)
    assert stripe.api_version is not None
    assert (stripe.api_version.name, stripe.api_version.value) == ("Stripe-Version", "2024-06-20")
    assert isinstance(stripe.pagination, StartingAfterPagination)
    assert stripe.webhook_verifier == "stripe"


def test_paging_and_rate_limit_headers(catalog: Catalog) -> None:
    assert isinstance(catalog["salesforce"].pagination, NextUrlPagination)
    assert isinstance(catalog["github"].pagination, LinkHeaderPagination)
    github = catalog["github"].rate_limit
    assert github is not None
    assert github.remaining_header == "X-RateLimit-Remaining"
    assert github.reset_format == "epoch_seconds"
    hubspot = catalog["hubspot"].rate_limit
    assert hubspot is not None
    assert hubspot.remaining_header == "X-HubSpot-RateLimit-Remaining"


def test_rest_base_url_comes_from_connection_config(catalog: Catalog) -> None:
    assert catalog["rest"].base_url_placeholders == ("base_url",)
    assert catalog.render_base_url("rest", {"base_url": "https://api.example.com/v2"}) == (
        "https://api.example.com/v2"
    )


def test_auth_mode_lookup_names_the_supported_types(catalog: Catalog) -> None:
    with pytest.raises(
        LookupError, match=r"provider 'sendgrid' has no 'oauth2' auth \(supported: api_key\)"
    ):
        catalog["sendgrid"].auth_mode("oauth2")
