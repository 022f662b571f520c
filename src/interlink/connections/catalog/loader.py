"""Loading, validating and querying the provider catalog.

The packaged ``providers.yaml`` is read first, then each user path in order (a directory
contributes its ``*.yaml``/``*.yml`` files sorted by name); a later definition of a provider
replaces the earlier one whole, a new name adds a provider.

Errors::

    CatalogError                 a catalog file is unreadable or invalid (one line per problem)
    └── TemplateError            a URL template cannot be rendered from connection config
    UnknownProviderError(KeyError)  no provider of that name
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, overload
from urllib.parse import quote, urlsplit

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode

from interlink.connections.catalog.models import (
    PLACEHOLDER_RE,
    OAuth2Auth,
    OAuth2ClientCredentialsAuth,
    Provider,
)

__all__ = [
    "PACKAGED_CATALOG",
    "Catalog",
    "CatalogError",
    "TemplateError",
    "UnknownProviderError",
    "load_catalog",
    "parse_catalog",
    "render_url_template",
]

PACKAGED_CATALOG = "providers.yaml"
"""Name of the catalog file shipped inside this package (and its name in error messages)."""

_T = TypeVar("_T")
_HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_TOP_LEVEL_KEYS = frozenset({"version", "providers"})


class CatalogError(Exception):
    """A catalog file could not be read or is invalid.

    ``str(error)`` has one line per problem, each naming file, provider and field, e.g.
    ``providers.yaml: provider 'acme': auth[0].token_url: field required``.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class TemplateError(CatalogError):
    """A ``{placeholder}`` of a URL template is missing from connection config or unsafe."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


class UnknownProviderError(KeyError):
    """The catalog has no provider of that name."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.message = f"unknown provider '{name}' (known: {', '.join(sorted(known))})"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _format_loc(loc: tuple[int | str, ...], data: object) -> str:
    """Render a pydantic error location as ``auth[0].token_url``.

    Discriminated unions insert the tag (``'oauth2'``) into the location; walking the input
    alongside tells a tag from a real key.
    """
    parts: list[str] = []
    current: object = data
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
            current = (
                current[item]
                if isinstance(current, list) and -len(current) <= item < len(current)
                else None
            )
            continue
        if isinstance(current, dict) and item not in current and current.get("type") == item:
            continue  # union tag, not a field
        parts.append(f".{item}" if parts else item)
        current = current.get(item) if isinstance(current, dict) else None
    return "".join(parts)


def _format_error(error: Mapping[str, Any], data: object) -> str:
    loc = _format_loc(tuple(error["loc"]), data)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "union_tag_invalid":
        loc = f"{loc}.type" if loc else "type"
        message = f"unknown type '{ctx.get('tag')}' (expected one of: {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        loc = f"{loc}.type" if loc else "type"
        message = "field required"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
    return f"{loc}: {message}" if loc else message


def _read_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or str(exc)
        raise CatalogError([f"{source}: invalid YAML{where}: {problem}"]) from exc
    except yaml.YAMLError as exc:
        raise CatalogError([f"{source}: invalid YAML: {exc}"]) from exc


def parse_catalog(text: str, source: str) -> dict[str, Provider]:
    """Parse and validate the text of one catalog file.

    Args:
        text: YAML with a top-level ``providers`` list (and an optional ``version: 1``).
        source: the file name to put in error messages.

    Returns:
        The providers of the file by name, in file order.

    Raises:
        CatalogError: with one line per problem found in the file.
    """
    document = _read_yaml(text, source)
    if not isinstance(document, dict):
        raise CatalogError([f"{source}: expected a mapping with a 'providers' list"])
    problems: list[str] = []
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            problems.append(f"{source}: unknown top-level key '{key}'")
    if document.get("version", 1) != 1:
        problems.append(f"{source}: unsupported version {document['version']!r} (expected 1)")
    entries = document.get("providers")
    if not isinstance(entries, list):
        problems.append(f"{source}: 'providers' must be a list")
        raise CatalogError(problems)

    providers: dict[str, Provider] = {}
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"provider '{name}'" if isinstance(name, str) else f"providers[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{source}: {label}: expected a mapping")
            continue
        if isinstance(name, str) and name in first_index:
            problems.append(
                f"{source}: {label}: duplicate provider "
                f"(providers[{index}] repeats providers[{first_index[name]}])"
            )
            continue
        if isinstance(name, str):
            first_index[name] = index
        try:
            provider = Provider.model_validate(entry)
        except ValidationError as exc:
            problems.extend(
                f"{source}: {label}: {_format_error(error, entry)}" for error in exc.errors()
            )
            continue
        providers[provider.name] = provider
    if problems:
        raise CatalogError(problems)
    return providers


def _catalog_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
    return [path]


def load_catalog(extra_paths: Sequence[Path] = ()) -> Catalog:
    """Load the packaged catalog, then each user file or directory in order.

    Args:
        extra_paths: files, or directories of ``*.yaml``/``*.yml`` files; a provider defined
            later replaces one of the same name, a new name is added.

    Returns:
        The validated, immutable catalog.

    Raises:
        CatalogError: a file is missing, unreadable or invalid.

    Example:
        >>> catalog = load_catalog([Path("/etc/interlink/providers.d")])
        >>> catalog.render_base_url("shopify", {"shop": "acme"})
        'https://acme.myshopify.com/admin/api/2024-10'
    """
    packaged = resources.files("interlink.connections.catalog").joinpath(PACKAGED_CATALOG)
    providers = parse_catalog(packaged.read_text(encoding="utf-8"), PACKAGED_CATALOG)
    sources = dict.fromkeys(providers, PACKAGED_CATALOG)
    for extra in extra_paths:
        path = Path(extra)
        if not path.exists():
            raise CatalogError([f"{path}: no such file or directory"])
        for file in _catalog_files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CatalogError([f"{file}: cannot read: {exc}"]) from exc
            loaded = parse_catalog(text, str(file))
            providers.update(loaded)
            sources.update(dict.fromkeys(loaded, str(file)))
    return Catalog(providers, sources=sources)


# --- URL templates ----------------------------------------------------------------------------


def _placeholder_position(template: str, start: int) -> str:
    if start == 0:
        return "origin"
    prefix = template[:start]
    scheme_end = prefix.find("://")
    if scheme_end >= 0 and "/" not in prefix[scheme_end + 3 :]:
        return "host"
    return "path"


def render_url_template(template: str, values: Mapping[str, object], *, what: str) -> str:
    """Fill the ``{placeholders}`` of a URL template from connection config.

    A placeholder that starts the template must be an absolute http(s) URL (Salesforce
    ``{instance_url}``); one inside the host must be a single DNS label (Shopify ``{shop}``), so
    that config can never move credentials to another host; anything later is percent-encoded.

    Args:
        template: e.g. ``https://{shop}.myshopify.com/admin/api/2024-10``.
        values: connection config.
        what: how to name the template in errors (``"provider 'shopify': base_url"``).

    Raises:
        TemplateError: a placeholder is missing, empty or not acceptable at its position.
    """
    pieces: list[str] = []
    position = 0
    for match in PLACEHOLDER_RE.finditer(template):
        key = match.group(1)
        pieces.append(template[position : match.start()])
        position = match.end()
        raw = values.get(key)
        if raw is None or raw == "":
            raise TemplateError(f"{what} '{template}' needs connection config '{key}'")
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise TemplateError(f"{what}: connection config '{key}' must be a string")
        value = str(raw)
        kind = _placeholder_position(template, match.start())
        if kind == "origin":
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise TemplateError(
                    f"{what}: connection config '{key}' must be an http(s) URL, got '{value}'"
                )
            if parts.query or parts.fragment or "@" in parts.netloc:
                raise TemplateError(
                    f"{what}: connection config '{key}' must not carry credentials, "
                    "a query or a fragment"
                )
            value = value.rstrip("/") if template[position : position + 1] == "/" else value
        elif kind == "host":
            if not _HOST_LABEL_RE.match(value):
                raise TemplateError(
                    f"{what}: connection config '{key}' must be a single DNS label, got '{value}'"
                )
        else:
            value = quote(value, safe="")
        pieces.append(value)
    pieces.append(template[position:])
    return "".join(pieces)


def _replace_origin(template: str, origin: str) -> str:
    """Swap the scheme and host of a URL template for ``origin``, keeping its path."""
    if template.startswith("{"):
        rest = template[template.index("}") + 1 :]
    else:
        authority_start = template.index("://") + 3
        slash = template.find("/", authority_start)
        rest = "" if slash < 0 else template[slash:]
    return origin.rstrip("/") + rest


def _with_origin(provider: Provider, origin: str) -> Provider:
    modes: list[Any] = []
    for mode in provider.auth:
        if isinstance(mode, OAuth2Auth):
            mode = mode.model_copy(
                update={
                    "authorize_url": _replace_origin(mode.authorize_url, origin),
                    "token_url": _replace_origin(mode.token_url, origin),
                    "revoke_url": (
                        None
                        if mode.revoke_url is None
                        else _replace_origin(mode.revoke_url, origin)
                    ),
                }
            )
        elif isinstance(mode, OAuth2ClientCredentialsAuth):
            mode = mode.model_copy(update={"token_url": _replace_origin(mode.token_url, origin)})
        modes.append(mode)
    return provider.model_copy(
        update={"base_url": _replace_origin(provider.base_url, origin), "auth": tuple(modes)}
    )


# --- the catalog ------------------------------------------------------------------------------


class Catalog(Mapping[str, Provider]):
    """An immutable mapping of provider name to :class:`Provider`.

    ``catalog["x"]`` and ``catalog.get("x")`` raise :class:`UnknownProviderError` for an unknown
    name (``get(name, default)`` returns the default instead).
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        sources: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self._providers: Mapping[str, Provider] = MappingProxyType(dict(providers))
        self._sources: Mapping[str, str] = MappingProxyType(dict(sources or {}))
        self._overrides: Mapping[str, str] = MappingProxyType(dict(overrides or {}))

    def __getitem__(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProviderError(name, list(self._providers)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def __repr__(self) -> str:
        return f"Catalog({sorted(self._providers)})"

    @overload
    def get(self, name: str, /) -> Provider: ...
    @overload
    def get(self, name: str, default: Provider | _T, /) -> Provider | _T: ...
    def get(self, name: str, *default: object) -> object:
        """Return the provider ``name``; without a default, raise for an unknown name.

        Raises:
            UnknownProviderError: no such provider and no default given.
        """
        if default and name not in self._providers:
            return default[0]
        return self[name]

    @property
    def overrides(self) -> Mapping[str, str]:
        """Base-URL overrides in force, by provider name."""
        return self._overrides

    def source_of(self, name: str) -> str:
        """The catalog file that defined provider ``name``."""
        self[name]
        return self._sources.get(name, "<memory>")

    def with_overrides(self, base_urls: Mapping[str, str]) -> Catalog:
        """Return a catalog whose named providers talk to another origin.

        The scheme and host of the provider's base URL and OAuth endpoints are replaced by the
        override, their paths are kept: ``{"salesforce": "http://127.0.0.1:9001"}`` gives the
        base URL ``http://127.0.0.1:9001/services/data/v61.0`` and the token URL
        ``http://127.0.0.1:9001/services/oauth2/token``. This is how tests and ``--demo`` point
        providers at the simulators.

        Raises:
            UnknownProviderError: an override names an unknown provider.
            CatalogError: an override is not an absolute http(s) URL.
        """
        providers = dict(self._providers)
        for name, origin in base_urls.items():
            parts = urlsplit(origin)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query:
                raise CatalogError([f"override for '{name}': '{origin}' is not an http(s) URL"])
            providers[name] = _with_origin(self[name], origin)
        return Catalog(providers, sources=self._sources, overrides={**self._overrides, **base_urls})

    def render_base_url(self, provider: str | Provider, config: Mapping[str, object]) -> str:
        """Render a provider's base URL from connection config.

        Raises:
            UnknownProviderError: ``provider`` names no provider.
            TemplateError: a placeholder is missing from ``config`` or unsafe.
        """
        resolved = self[provider] if isinstance(provider, str) else provider
        return render_url_template(
            resolved.base_url, config, what=f"provider '{resolved.name}': base_url"
        )
