"""User catalog files add and override providers; the catalog is an immutable mapping."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from interlink.connections.catalog import (
    ApiKeyAuth,
    Catalog,
    CatalogError,
    OAuth2Auth,
    UnknownProviderError,
    load_catalog,
)

ACME = """
providers:
  - name: acme
    display_name: Acme
    base_url: https://api.acme.example/v1
    auth:
      - {type: api_key, in: query, name: key}
"""

STRIPE_OVERRIDE = """
providers:
  - name: stripe
    display_name: Stripe (EU proxy)
    base_url: https://stripe-proxy.example.eu
    auth:
      - {type: api_key, in: header, name: Authorization, prefix: "Bearer "}
"""


def test_user_file_adds_a_provider(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(ACME)
    catalog = load_catalog([path])
    assert "acme" in catalog
    assert "stripe" in catalog
    key = catalog["acme"].auth[0]
    assert isinstance(key, ApiKeyAuth)
    assert (key.in_, key.name) == ("query", "key")
    assert catalog.source_of("acme") == str(path)


def test_user_file_overrides_a_shipped_provider_whole(tmp_path: Path) -> None:
    path = tmp_path / "stripe.yaml"
    path.write_text(STRIPE_OVERRIDE)
    shipped = load_catalog([])
    catalog = load_catalog([path])
    assert catalog["stripe"].display_name == "Stripe (EU proxy)"
    assert catalog["stripe"].pagination is None
    assert len(catalog) == len(shipped)


def test_directory_files_load_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "10-acme.yaml").write_text(ACME)
    (tmp_path / "20-acme.yml").write_text(ACME.replace("Acme", "Acme Two"))
    (tmp_path / "notes.txt").write_text("not a catalog")
    catalog = load_catalog([tmp_path])
    assert catalog["acme"].display_name == "Acme Two"


def test_later_paths_win(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text(ACME.replace("Acme", "First"))
    second.write_text(ACME.replace("Acme", "Second"))
    assert load_catalog([first, second])["acme"].display_name == "Second"
    assert load_catalog([second, first])["acme"].display_name == "First"


def test_catalog_is_an_immutable_mapping() -> None:
    catalog = load_catalog([])
    assert isinstance(catalog, Mapping)
    with pytest.raises(TypeError):
        catalog["acme"] = catalog["stripe"]  # type: ignore[index]
    with pytest.raises(Exception, match="frozen"):
        catalog["stripe"].display_name = "Other"  # type: ignore[misc]


def test_unknown_provider_is_a_clear_key_error() -> None:
    catalog = load_catalog([])
    with pytest.raises(UnknownProviderError) as info:
        catalog.get("stipe")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown provider 'stipe' (known: github, google,")
    with pytest.raises(KeyError):
        catalog["stipe"]
    assert catalog.get("stipe", None) is None
    assert "stipe" not in catalog


def test_with_overrides_points_a_provider_at_a_local_origin() -> None:
    catalog = load_catalog([])
    local = catalog.with_overrides({"stripe": "http://127.0.0.1:12111"})
    assert local.render_base_url("stripe", {}) == "http://127.0.0.1:12111"
    oauth = local["stripe"].auth_mode("oauth2")
    assert isinstance(oauth, OAuth2Auth)
    assert oauth.token_url == "http://127.0.0.1:12111/oauth/token"
    assert local.overrides == {"stripe": "http://127.0.0.1:12111"}
    # The original is untouched.
    assert catalog.render_base_url("stripe", {}) == "https://api.stripe.com"


def test_override_keeps_the_path_and_drops_origin_placeholders() -> None:
    local = load_catalog([]).with_overrides(
        {"salesforce": "http://127.0.0.1:9001", "shopify": "http://127.0.0.1:9002/"}
    )
    assert local.render_base_url("salesforce", {}) == "http://127.0.0.1:9001/services/data/v61.0"
    assert local.render_base_url("shopify", {}) == "http://127.0.0.1:9002/admin/api/2024-10"
    oauth = local["salesforce"].auth_mode("oauth2")
    assert isinstance(oauth, OAuth2Auth)
    assert oauth.revoke_url == "http://127.0.0.1:9001/services/oauth2/revoke"


def test_override_of_unknown_provider_or_bad_url() -> None:
    catalog = load_catalog([])
    with pytest.raises(UnknownProviderError):
        catalog.with_overrides({"nope": "http://127.0.0.1:1"})
    with pytest.raises(CatalogError, match="override for 'stripe': 'localhost:1' is not an http"):
        catalog.with_overrides({"stripe": "localhost:1"})


def test_catalog_from_memory() -> None:
    shipped = load_catalog([])
    catalog = Catalog({"stripe": shipped["stripe"]})
    assert list(catalog) == ["stripe"]
    assert catalog.source_of("stripe") == "<memory>"
