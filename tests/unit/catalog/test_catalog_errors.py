"""Invalid catalog files fail with one precise line naming file, provider and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlink.connections.catalog import CatalogError, load_catalog, parse_catalog

GOOD_OAUTH = """
      - type: oauth2
        authorize_url: https://acme.example/authorize
        token_url: https://acme.example/token
"""


def provider(body: str, name: str = "acme") -> str:
    return f"""
providers:
  - name: {name}
    display_name: Acme
    base_url: https://api.acme.example
{body}
"""


def error_of(text: str, source: str = "providers.yaml") -> str:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, source)
    return str(info.value)


def test_a_valid_file_parses() -> None:
    providers = parse_catalog(provider("    auth:" + GOOD_OAUTH), "providers.yaml")
    assert list(providers) == ["acme"]


def test_missing_field_names_file_provider_and_field() -> None:
    text = provider(
        """    auth:
      - type: oauth2
        authorize_url: https://acme.example/authorize
"""
    )
    assert error_of(text) == "providers.yaml: provider 'acme': auth[0].token_url: field required"


def test_missing_top_level_field() -> None:
    text = """
providers:
  - name: acme
    base_url: https://api.acme.example
    auth: [{type: basic}]
"""
    assert error_of(text, "mine.yaml") == "mine.yaml: provider 'acme': display_name: field required"


def test_unknown_auth_type() -> None:
    text = provider(
        """    auth:
      - type: oauth3
        token_url: https://acme.example/token
"""
    )
    assert error_of(text) == (
        "providers.yaml: provider 'acme': auth[0].type: unknown type 'oauth3' "
        "(expected one of: 'oauth2', 'oauth2_cc', 'api_key', 'basic')"
    )


def test_unknown_key_is_refused() -> None:
    text = provider("    auth:" + GOOD_OAUTH + "        scopes_separator: ','\n")
    assert error_of(text) == (
        "providers.yaml: provider 'acme': auth[0].scopes_separator: extra inputs are not permitted"
    )


def test_wrong_type_is_not_coerced() -> None:
    text = provider("    auth:" + GOOD_OAUTH + "        pkce: 'yes'\n")
    assert error_of(text) == (
        "providers.yaml: provider 'acme': auth[0].pkce: input should be a valid boolean"
    )


def test_nested_pagination_error() -> None:
    text = provider(
        "    auth:" + GOOD_OAUTH + "    pagination: {type: cursor, cursor_param: after}\n"
    )
    assert error_of(text) == (
        "providers.yaml: provider 'acme': pagination.cursor_path: field required"
    )


def test_bad_yaml_names_line_and_column() -> None:
    text = "providers:\n  - name: acme\n    display_name: [unclosed\n"
    message = error_of(text)
    assert message.startswith("providers.yaml: invalid YAML at line ")
    assert "\n" not in message


def test_duplicate_provider_in_one_file() -> None:
    text = provider("    auth:" + GOOD_OAUTH) + provider("    auth:" + GOOD_OAUTH).replace(
        "providers:\n", ""
    )
    assert error_of(text) == (
        "providers.yaml: provider 'acme': duplicate provider (providers[1] repeats providers[0])"
    )


def test_duplicate_yaml_key_is_refused() -> None:
    text = provider("    auth:" + GOOD_OAUTH + "    display_name: Again\n")
    message = error_of(text)
    assert message.startswith("providers.yaml: invalid YAML at line ")
    assert message.endswith("duplicate key 'display_name'")


def test_unnamed_entry_is_labelled_by_index() -> None:
    text = (
        "providers:\n"
        "  - display_name: Nameless\n"
        "    base_url: https://x.example\n"
        "    auth: [{type: basic}]\n"
    )
    assert error_of(text) == "providers.yaml: providers[0]: name: field required"


def test_same_auth_type_twice() -> None:
    text = provider("    auth:\n      - {type: basic}\n      - {type: basic}\n")
    assert error_of(text) == (
        "providers.yaml: provider 'acme': auth: auth type 'basic' is declared twice"
    )


def test_bad_base_url_template() -> None:
    text = provider("    auth: [{type: basic}]\n", name="acme").replace(
        "https://api.acme.example", "https://{Shop}.acme.example"
    )
    assert error_of(text) == (
        "providers.yaml: provider 'acme': base_url: "
        "placeholder '{Shop}' is not a lower-case identifier"
    )


def test_every_problem_gets_its_own_line() -> None:
    text = provider("    auth:\n      - {type: api_key, in: body}\n")
    lines = error_of(text).splitlines()
    assert lines == [
        "providers.yaml: provider 'acme': auth[0].in: input should be 'header' or 'query'",
        "providers.yaml: provider 'acme': auth[0].name: field required",
    ]


def test_top_level_must_be_a_providers_list() -> None:
    assert error_of("- name: acme\n") == (
        "providers.yaml: expected a mapping with a 'providers' list"
    )
    assert error_of("providers: {}\n") == "providers.yaml: 'providers' must be a list"


def test_user_file_errors_name_the_user_file(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(
        provider(
            """    auth:
      - type: oauth2
        authorize_url: https://acme.example/authorize
"""
        )
    )
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    assert str(info.value) == f"{path}: provider 'acme': auth[0].token_url: field required"


def test_missing_user_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file or directory"):
        load_catalog([tmp_path / "absent.yaml"])
