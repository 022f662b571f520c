"""The provider catalog: every provider Interlink knows, declared as data.

``providers.yaml`` beside this module ships the built-in providers; users add or replace
providers with their own files (``load_catalog([path, ...])``). Connectors, the OAuth flow, the
proxy and the admin API read providers from here and never hard-code a provider's URLs.

This package imports only pydantic and PyYAML.
"""

from __future__ import annotations

from interlink.connections.catalog.loader import (
    PACKAGED_CATALOG,
    Catalog,
    CatalogError,
    TemplateError,
    UnknownProviderError,
    load_catalog,
    parse_catalog,
    render_url_template,
)
from interlink.connections.catalog.models import (
    ApiKeyAuth,
    ApiVersion,
    AuthMode,
    BasicAuth,
    CursorPagination,
    HealthProbe,
    LimitHint,
    LinkHeaderPagination,
    NextUrlPagination,
    OAuth2Auth,
    OAuth2ClientCredentialsAuth,
    OffsetPagination,
    PagePagination,
    Pagination,
    Provider,
    RateLimitHints,
    RetryHeader,
    RetryHints,
    StartingAfterPagination,
    TimeFormat,
    TokenResponseMapping,
    WebhookVerifier,
)

__all__ = [
    "PACKAGED_CATALOG",
    "ApiKeyAuth",
    "ApiVersion",
    "AuthMode",
    "BasicAuth",
    "Catalog",
    "CatalogError",
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
    "TemplateError",
    "TimeFormat",
    "TokenResponseMapping",
    "UnknownProviderError",
    "WebhookVerifier",
    "load_catalog",
    "parse_catalog",
    "render_url_template",
]
