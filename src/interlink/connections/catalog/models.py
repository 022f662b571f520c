"""Pydantic models of the provider catalog.

A provider is declared as data: where its API lives, how a connection authenticates to it, which
API version it pins, how it rate-limits and paginates, how its webhooks are verified and how its
health is probed. Every model is strict (no type coercion), frozen and rejects unknown keys, so a
typo in ``providers.yaml`` is an error, never a silently ignored setting.

The unions below are discriminated by ``type``::

    AuthMode   = OAuth2Auth | OAuth2ClientCredentialsAuth | ApiKeyAuth | BasicAuth
    Pagination = CursorPagination | OffsetPagination | PagePagination | LinkHeaderPagination
               | NextUrlPagination | StartingAfterPagination
"""

# ruff: noqa: S105  (field names such as access_token are not secrets)
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ApiKeyAuth",
    "ApiVersion",
    "AuthMode",
    "BasicAuth",
    "CursorPagination",
    "HealthProbe",
    "LimitHint",
    "LinkHeaderPagination",
    "NextUrlPagination",
    "OAuth2Auth",
    "OAuth2ClientCredentialsAuth",
    "OffsetPagination",
    "PagePagination",
    "Pagination",
    "Provider",
    "RateLimitHints",
    "RetryHeader",
    "RetryHints",
    "StartingAfterPagination",
    "TimeFormat",
    "TokenResponseMapping",
    "WebhookVerifier",
    "template_placeholders",
]

_T = TypeVar("_T")

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_PROVIDER_NAME_RE = r"^[a-z][a-z0-9_-]*$"
_HEADER_NAME_RE = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
_DOT_PATH_RE = r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$"

TimeFormat = Literal["delta_seconds", "epoch_seconds", "epoch_ms"]
"""How a header expresses a time: seconds from now, Unix seconds, or Unix milliseconds."""

WebhookVerifier = Literal[
    "stripe",
    "github",
    "shopify",
    "slack",
    "twilio",
    "hubspot",
    "standard-webhooks",
    "svix",
    "hmac",
]
"""The inbound-webhook verifiers Interlink ships (the ``provider`` of an inbound source)."""


def _list_to_tuple(value: Any) -> Any:
    # YAML gives lists; strict mode wants real tuples, which keep the catalog immutable.
    return tuple(value) if isinstance(value, list) else value


FrozenList = Annotated[tuple[_T, ...], BeforeValidator(_list_to_tuple)]
HeaderName = Annotated[str, Field(pattern=_HEADER_NAME_RE)]
DotPath = Annotated[str, Field(pattern=_DOT_PATH_RE)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def template_placeholders(template: str) -> tuple[str, ...]:
    """Return the ``{placeholder}`` names of a URL template, in order of appearance.

    Raises:
        ValueError: a placeholder is not a lower-case identifier, or braces are unbalanced.
    """
    names = PLACEHOLDER_RE.findall(template)
    for name in names:
        if not _IDENTIFIER_RE.match(name):
            raise ValueError(f"placeholder '{{{name}}}' is not a lower-case identifier")
    stripped = PLACEHOLDER_RE.sub("", template)
    if "{" in stripped or "}" in stripped:
        raise ValueError("unbalanced '{' or '}'")
    return tuple(names)


def _check_url_template(value: str) -> str:
    template_placeholders(value)
    if not (value.startswith(("https://", "http://")) or value.startswith("{")):
        raise ValueError("must start with http:// or https:// or with a {placeholder}")
    return value


UrlTemplate = Annotated[str, Field(min_length=1)]


class CatalogModel(BaseModel):
    """Base of every catalog model: strict, frozen, unknown keys forbidden."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


# --- auth modes -------------------------------------------------------------------------------


class TokenResponseMapping(CatalogModel):
    """Where the fields of a token endpoint's JSON answer live (dot paths).

    ``config_fields`` maps a connection-config key to a path in the token response whose value is
    kept as non-secret connection config (e.g. Salesforce ``instance_url``).
    """

    access_token: DotPath = "access_token"
    refresh_token: DotPath | None = "refresh_token"
    expires_in: DotPath | None = "expires_in"
    scope: DotPath | None = "scope"
    config_fields: dict[str, DotPath] = Field(default_factory=dict)


class OAuth2Auth(CatalogModel):
    """OAuth 2.0 authorization code grant (optionally with PKCE, RFC 7636).

    URLs may hold ``{placeholders}`` filled from connection config (Shopify's ``{shop}``).
    ``revoke_url`` may hold ```{token}``, replaced by the token being revoked; otherwise the token
    is sent as the field ``token`` of a form (RFC 7009) or JSON (``revoke_format``) body.
    """

    type: Literal["oauth2"]
    authorize_url: UrlTemplate
    token_url: UrlTemplate
    revoke_url: UrlTemplate | None = None
    revoke_method: Literal["POST", "DELETE"] = "POST"
    revoke_format: Literal["form", "json"] = "form"
    default_scopes: FrozenList[NonEmptyStr] = ()
    scope_separator: str = " "
    pkce: bool = False
    authorize_params: dict[str, str] = Field(default_factory=dict)
    token_params: dict[str, str] = Field(default_factory=dict)
    token_headers: dict[HeaderName, str] = Field(default_factory=dict)
    token_auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    token_response: TokenResponseMapping = Field(default_factory=TokenResponseMapping)
    callback_config: dict[str, NonEmptyStr] = Field(default_factory=dict)
    """Connection-config key -> query parameter of the redirect back (QuickBooks ``realmId``)."""
    default_expires_in: Annotated[int, Field(gt=0)] | None = None
    """Access-token lifetime to assume when the token response carries none (Salesforce)."""
    access_token_header: HeaderName = "Authorization"
    access_token_prefix: str = "Bearer "

    @field_validator("authorize_url", "token_url", "revoke_url")
    @classmethod
    def _url_templates(cls, value: str | None) -> str | None:
        return value if value is None else _check_url_template(value)


class OAuth2ClientCredentialsAuth(CatalogModel):
    """OAuth 2.0 client credentials grant (machine to machine)."""

    type: Literal["oauth2_cc"]
    token_url: UrlTemplate
    scopes: FrozenList[NonEmptyStr] = ()
    scope_separator: str = " "
    audience: str | None = None
    token_params: dict[str, str] = Field(default_factory=dict)
    token_auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_basic"
    access_token_header: HeaderName = "Authorization"
    access_token_prefix: str = "Bearer "

    @field_validator("token_url")
    @classmethod
    def _url_template(cls, value: str) -> str:
        return _check_url_template(value)


class ApiKeyAuth(CatalogModel):
    """A static key sent in a header or a query parameter.

    ``field`` names the connection credential holding the key; ``prefix`` is prepended
    (``"Bearer "``).
    """

    type: Literal["api_key"]
    in_: Literal["header", "query"] = Field(alias="in")
    name: NonEmptyStr
    prefix: str = ""
    field: NonEmptyStr = "api_key"

    @model_validator(mode="after")
    def _header_name_is_valid(self) -> ApiKeyAuth:
        if self.in_ == "header" and not re.match(_HEADER_NAME_RE, self.name):
            raise ValueError(f"'{self.name}' is not a valid header name")
        return self


class BasicAuth(CatalogModel):
    """HTTP Basic auth built from two connection credentials.

    ``password_field: null`` sends an empty password (Stripe takes the secret key as username).
    """

    type: Literal["basic"]
    username_field: NonEmptyStr = "username"
    password_field: NonEmptyStr | None = "password"


AuthMode = Annotated[
    OAuth2Auth | OAuth2ClientCredentialsAuth | ApiKeyAuth | BasicAuth,
    Field(discriminator="type"),
]

# --- request shaping, limits and retries ------------------------------------------------------


class ApiVersion(CatalogModel):
    """A header pinning the provider's API version on every call (``Stripe-Version``)."""

    name: HeaderName
    value: NonEmptyStr


class LimitHint(CatalogModel):
    """``requests`` per ``per_seconds``, counted per connection or across the whole provider."""

    requests: Annotated[int, Field(gt=0)]
    per_seconds: Annotated[int, Field(gt=0)]
    scope: Literal["connection", "provider"] = "connection"
    burst: Annotated[int, Field(gt=0)] | None = None
    """Bucket size of a leaky-bucket limiter (Shopify: 40 requests, leaking 2/s)."""


class RateLimitHints(CatalogModel):
    """Documented limits and the response headers that report the remaining budget."""

    limits: FrozenList[LimitHint] = ()
    limit_header: HeaderName | None = None
    remaining_header: HeaderName | None = None
    reset_header: HeaderName | None = None
    reset_format: TimeFormat = "epoch_seconds"


class RetryHeader(CatalogModel):
    """A response header that says when to retry, and its time format."""

    name: HeaderName
    format: TimeFormat = "delta_seconds"


class RetryHints(CatalogModel):
    """What a retry policy may honour for this provider.

    ``should_retry_header`` names a header whose ``true``/``false`` overrides the status-based
    decision (``Stripe-Should-Retry``).
    """

    headers: FrozenList[RetryHeader] = ()
    statuses: FrozenList[Annotated[int, Field(ge=400, le=599)]] = (429, 500, 502, 503, 504)
    should_retry_header: HeaderName | None = None


# --- pagination -------------------------------------------------------------------------------


class CursorPagination(CatalogModel):
    """An opaque cursor read from the body at ``cursor_path`` and sent as ``cursor_param``."""

    type: Literal["cursor"]
    cursor_param: NonEmptyStr
    cursor_path: DotPath
    has_more_path: DotPath | None = None
    limit_param: NonEmptyStr | None = None
    page_size: Annotated[int, Field(gt=0)] | None = None


class OffsetPagination(CatalogModel):
    """``limit``/``offset`` parameters; stops on a short page or when ``total_path`` is reached."""

    type: Literal["offset"]
    limit_param: NonEmptyStr = "limit"
    offset_param: NonEmptyStr = "offset"
    total_path: DotPath | None = None
    page_size: Annotated[int, Field(gt=0)] = 100


class PagePagination(CatalogModel):
    """Numbered pages starting at ``start_page``; stops on a short or empty page."""

    type: Literal["page"]
    page_param: NonEmptyStr = "page"
    size_param: NonEmptyStr | None = None
    start_page: Annotated[int, Field(ge=0)] = 1
    page_size: Annotated[int, Field(gt=0)] = 100


class LinkHeaderPagination(CatalogModel):
    """RFC 8288 ``Link`` header with ``rel="next"`` (GitHub, Shopify)."""

    type: Literal["link_header"]
    size_param: NonEmptyStr | None = None
    page_size: Annotated[int, Field(gt=0)] | None = None


class NextUrlPagination(CatalogModel):
    """The body carries the next page's URL (absolute or relative) at ``next_url_path``."""

    type: Literal["next_url"]
    next_url_path: DotPath


class StartingAfterPagination(CatalogModel):
    """Stripe style: ``starting_after`` = id of the last item, continue while ``has_more``."""

    type: Literal["starting_after"]
    cursor_param: NonEmptyStr = "starting_after"
    id_path: DotPath = "id"
    has_more_path: DotPath = "has_more"
    limit_param: NonEmptyStr = "limit"
    page_size: Annotated[int, Field(gt=0)] = 100


Pagination = Annotated[
    CursorPagination
    | OffsetPagination
    | PagePagination
    | LinkHeaderPagination
    | NextUrlPagination
    | StartingAfterPagination,
    Field(discriminator="type"),
]

# --- provider ---------------------------------------------------------------------------------


class HealthProbe(CatalogModel):
    """A cheap authenticated call whose status tells whether a connection works."""

    method: Literal["GET", "HEAD", "POST"] = "GET"
    path: Annotated[str, Field(pattern=r"^/")]
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200


class Provider(CatalogModel):
    """One kind of third-party system, declared as data.

    Example:
        >>> provider = catalog.get("stripe")
        >>> provider.auth_mode("api_key").name
        'Authorization'
    """

    name: Annotated[str, Field(pattern=_PROVIDER_NAME_RE)]
    display_name: NonEmptyStr
    categories: FrozenList[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = ()
    base_url: UrlTemplate
    auth: Annotated[FrozenList[AuthMode], Field(min_length=1)]
    api_version: ApiVersion | None = None
    headers: dict[HeaderName, str] = Field(default_factory=dict)
    """Headers sent on every call; values may hold ``{placeholders}`` from connection config."""
    rate_limit: RateLimitHints | None = None
    retry: RetryHints = Field(default_factory=RetryHints)
    pagination: Pagination | None = None
    webhook_verifier: WebhookVerifier | None = None
    health_probe: HealthProbe | None = None
    docs_url: Annotated[str, Field(pattern=r"^https://")] | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url_template(cls, value: str) -> str:
        return _check_url_template(value)

    @field_validator("auth")
    @classmethod
    def _one_mode_per_type(
        cls, modes: tuple[OAuth2Auth | OAuth2ClientCredentialsAuth | ApiKeyAuth | BasicAuth, ...]
    ) -> tuple[OAuth2Auth | OAuth2ClientCredentialsAuth | ApiKeyAuth | BasicAuth, ...]:
        seen: set[str] = set()
        for mode in modes:
            if mode.type in seen:
                raise ValueError(f"auth type '{mode.type}' is declared twice")
            seen.add(mode.type)
        return modes

    @property
    def base_url_placeholders(self) -> tuple[str, ...]:
        """Connection-config keys the base URL needs."""
        return template_placeholders(self.base_url)

    def auth_mode(
        self, type_: str
    ) -> OAuth2Auth | OAuth2ClientCredentialsAuth | ApiKeyAuth | BasicAuth:
        """Return the auth mode of the given ``type``.

        Raises:
            LookupError: the provider does not support that auth type.
        """
        for mode in self.auth:
            if mode.type == type_:
                return mode
        supported = ", ".join(mode.type for mode in self.auth)
        raise LookupError(f"provider '{self.name}' has no '{type_}' auth (supported: {supported})")
