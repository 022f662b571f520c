"""A connection ready to use: its provider, auth mode, config and decrypted credentials.

``ConnectionView`` is what the proxy, connectors and health probes hold; ``request_auth``
turns it into the headers and query parameters a call to the provider needs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from interlink.connections.catalog import (
    ApiKeyAuth,
    BasicAuth,
    Catalog,
    OAuth2Auth,
    OAuth2ClientCredentialsAuth,
    Provider,
    TemplateError,
)
from interlink.egress import ClientCertificate
from interlink.vault import Vault

__all__ = [
    "AuthModeModel",
    "ConnectionView",
    "auth_mode_of",
    "decrypt_credentials",
    "encrypt_credentials",
    "request_auth",
    "view_of",
]

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
AuthModeModel = OAuth2Auth | OAuth2ClientCredentialsAuth | ApiKeyAuth | BasicAuth


def _context(connection_id: str) -> str:
    return f"connections.credentials:{connection_id}"


def encrypt_credentials(vault: Vault, connection_id: str, secrets: Mapping[str, Any]) -> str:
    """Encrypt a connection's secrets, bound to its row."""
    return vault.encrypt(orjson.dumps(dict(secrets)), context=_context(connection_id))


def decrypt_credentials(vault: Vault, connection_id: str, ciphertext: str) -> dict[str, Any]:
    """Decrypt what :func:`encrypt_credentials` made for the same connection."""
    data = orjson.loads(vault.decrypt_bytes(ciphertext, context=_context(connection_id)))
    return data if isinstance(data, dict) else {}


def auth_mode_of(provider: Provider, auth_type: str) -> AuthModeModel:
    """The provider's auth mode of type ``auth_type``.

    Raises:
        KeyError: the provider has no such auth mode.
    """
    for mode in provider.auth:
        if mode.type == auth_type:
            return mode
    raise KeyError(f"provider '{provider.name}' has no auth mode '{auth_type}'")


@dataclass(slots=True)
class ConnectionView:
    """A connection with its secrets, as the hot path uses it."""

    id: str
    tenant_id: str
    provider: Provider
    mode: AuthModeModel
    status: str
    status_reason: str | None
    config: dict[str, Any]
    credentials: dict[str, Any]
    version: int
    expires_at: datetime | None
    token_lifetime: int | None
    base_url: str
    static_headers: dict[str, str]
    host: str = ""
    client_certificate: ClientCertificate | None = None

    @property
    def provider_name(self) -> str:
        return self.provider.name

    @property
    def refreshable(self) -> bool:
        """Whether a new access token can be obtained without the user."""
        if isinstance(self.mode, OAuth2ClientCredentialsAuth):
            return True
        return isinstance(self.mode, OAuth2Auth) and bool(self.credentials.get("refresh_token"))


def view_of(row: Mapping[str, Any], catalog: Catalog, vault: Vault) -> ConnectionView:
    """Build the view of a ``connections`` row.

    Raises:
        UnknownProviderError, KeyError, TemplateError: the row no longer fits the catalog.
    """
    provider = catalog[row["provider"]]
    config = dict(row["config"] or {})
    headers: dict[str, str] = {}
    if provider.api_version is not None:
        headers[provider.api_version.name] = provider.api_version.value
    for name, template in provider.headers.items():
        headers[name] = _render_header(template, config)
    base_url = catalog.render_base_url(provider, config).rstrip("/")
    credentials = decrypt_credentials(vault, row["id"], row["credentials"])
    return ConnectionView(
        id=row["id"],
        tenant_id=row["tenant_id"],
        provider=provider,
        mode=auth_mode_of(provider, row["auth_type"]),
        status=row["status"],
        status_reason=row["status_reason"],
        config=config,
        credentials=credentials,
        version=int(row["credentials_version"]),
        expires_at=row["expires_at"],
        token_lifetime=row["token_lifetime"],
        base_url=base_url,
        static_headers=headers,
        host=urlsplit(base_url).netloc.lower(),
        client_certificate=_certificate(credentials),
    )


def _certificate(credentials: Mapping[str, Any]) -> ClientCertificate | None:
    """Mutual TLS: ``tls_cert_pem`` and ``tls_key_pem`` (and ``tls_ca_pem``) in credentials."""
    cert, key = credentials.get("tls_cert_pem"), credentials.get("tls_key_pem")
    if not isinstance(cert, str) or not isinstance(key, str):
        return None
    ca = credentials.get("tls_ca_pem")
    return ClientCertificate(cert, key, ca if isinstance(ca, str) else None)


def _render_header(template: str, config: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = config.get(match.group(1))
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise TemplateError(f"header needs connection config '{match.group(1)}'")
        text = str(value)
        if "\r" in text or "\n" in text:
            raise TemplateError(f"connection config '{match.group(1)}' must be one line")
        return text

    return _PLACEHOLDER.sub(fill, template)


def request_auth(view: ConnectionView) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Headers and query parameters that authenticate one call with ``view``'s credentials."""
    headers = dict(view.static_headers)
    query: list[tuple[str, str]] = []
    mode = view.mode
    secrets = view.credentials
    if isinstance(mode, OAuth2Auth | OAuth2ClientCredentialsAuth):
        token = str(secrets.get("access_token", ""))
        headers[mode.access_token_header] = f"{mode.access_token_prefix}{token}"
    elif isinstance(mode, ApiKeyAuth):
        value = f"{mode.prefix}{secrets.get(mode.field, '')}"
        if mode.in_ == "header":
            headers[mode.name] = value
        else:
            query.append((mode.name, value))
    else:
        user = str(secrets.get(mode.username_field, ""))
        password = "" if mode.password_field is None else str(secrets.get(mode.password_field, ""))
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {encoded}"
    return headers, query
