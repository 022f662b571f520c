"""Rendering base URLs from connection config: missing and unsafe values fail clearly."""

from __future__ import annotations

import pytest

from interlink.connections.catalog import (
    Catalog,
    TemplateError,
    load_catalog,
    render_url_template,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog([])


def test_salesforce_base_url_from_instance_url(catalog: Catalog) -> None:
    config = {"instance_url": "https://acme.my.salesforce.com/"}
    assert catalog.render_base_url("salesforce", config) == (
        "https://acme.my.salesforce.com/services/data/v61.0"
    )


def test_shopify_base_url_from_shop(catalog: Catalog) -> None:
    assert catalog.render_base_url(catalog["shopify"], {"shop": "acme-store"}) == (
        "https://acme-store.myshopify.com/admin/api/2024-10"
    )


def test_quickbooks_realm_goes_in_the_path(catalog: Catalog) -> None:
    assert catalog.render_base_url("quickbooks", {"realm_id": 9130350}) == (
        "https://quickbooks.api.intuit.com/v3/company/9130350"
    )


def test_missing_placeholder_names_provider_template_and_key(catalog: Catalog) -> None:
    with pytest.raises(TemplateError) as info:
        catalog.render_base_url("salesforce", {})
    assert str(info.value) == (
        "provider 'salesforce': base_url '{instance_url}/services/data/v61.0' "
        "needs connection config 'instance_url'"
    )


def test_empty_value_counts_as_missing(catalog: Catalog) -> None:
    with pytest.raises(TemplateError, match="needs connection config 'shop'"):
        catalog.render_base_url("shopify", {"shop": ""})


@pytest.mark.parametrize("shop", ["evil.example/x?", "a.b", "user@evil", "-x"])
def test_host_placeholder_must_be_one_dns_label(catalog: Catalog, shop: str) -> None:
    with pytest.raises(TemplateError, match="must be a single DNS label"):
        catalog.render_base_url("shopify", {"shop": shop})


@pytest.mark.parametrize(
    "instance_url",
    [
        "acme.my.salesforce.com",
        "ftp://acme.example",
        "https://x.example?y=1",
        "https://u:p@x.example",
    ],
)
def test_origin_placeholder_must_be_a_plain_http_url(catalog: Catalog, instance_url: str) -> None:
    with pytest.raises(TemplateError, match="connection config 'instance_url' must"):
        catalog.render_base_url("salesforce", {"instance_url": instance_url})


def test_path_placeholder_is_percent_encoded() -> None:
    rendered = render_url_template(
        "https://api.example.com/v3/company/{realm_id}/x", {"realm_id": "a/../b?c"}, what="t"
    )
    assert rendered == "https://api.example.com/v3/company/a%2F..%2Fb%3Fc/x"


def test_non_string_value_is_refused() -> None:
    with pytest.raises(TemplateError, match="connection config 'shop' must be a string"):
        render_url_template("https://{shop}.x.example", {"shop": ["a"]}, what="t")
