"""Request and response shapes of the connections API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from interlink.api.models import JSONObject, Name, StrictModel

__all__ = [
    "ConnectionCreate",
    "ConnectionPublic",
    "OAuthAppPublic",
    "OAuthAppPut",
    "OAuthStart",
    "OAuthStarted",
    "ProviderHealth",
    "ProviderPublic",
]


def _fits_the_store(value: Any) -> Any:
    # Integers beyond 64 bits are refused, as everywhere in the management API (api.models).
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise ValueError("integers must fit in 64 bits")
    if isinstance(value, dict):
        for item in value.values():
            _fits_the_store(item)
    elif isinstance(value, list):
        for item in value:
            _fits_the_store(item)
    return value


StoredJSON = Annotated[JSONObject, AfterValidator(_fits_the_store)]
ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,49}$")]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=20000, pattern=r"^[^\x00]+$")]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00\s]+$")]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://\S+$")]


class ConnectionCreate(StrictModel):
    """A connection from static credentials (API key, basic, OAuth client credentials)."""

    provider: ProviderName
    auth_type: Literal["api_key", "basic", "oauth2_cc"]
    credentials: dict[Annotated[str, StringConstraints(max_length=100)], Secret] = Field(
        description="api_key: {<field>: key}; basic: {username, password}; "
        "oauth2_cc: {client_id, client_secret}; any mode may add tls_cert_pem, tls_key_pem "
        "and tls_ca_pem for mutual TLS"
    )
    config: StoredJSON = Field(default_factory=dict, description="e.g. {'shop': 'acme'}")
    name: Name | None = None
    metadata: StoredJSON = Field(default_factory=dict)
    verify: bool = Field(True, description="check the credentials with the health probe first")


class ConnectionPublic(BaseModel):
    """A connection; its credentials are never shown."""

    id: str
    tenant_id: str
    provider: str
    auth_type: str
    name: str | None
    status: Literal["active", "refreshing", "expired", "revoked", "error"]
    status_reason: str | None
    config: dict[str, Any]
    metadata: dict[str, Any]
    scopes: list[str]
    expires_at: datetime | None
    last_refreshed_at: datetime | None
    health_status: str | None
    health_detail: str | None
    health_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OAuthStart(StrictModel):
    """Start an authorization-code flow."""

    provider: ProviderName
    scopes: Annotated[list[Scope], Field(max_length=100)] | None = None
    redirect_after: Url | None = Field(
        None, description="where the browser goes after the callback (absolute http(s) URL)"
    )
    config: StoredJSON = Field(default_factory=dict)
    connection_id: Annotated[str, StringConstraints(pattern=r"^con_[A-Za-z0-9]{1,56}$")] | None = (
        Field(None, description="re-authorize this existing connection")
    )


class OAuthStarted(BaseModel):
    authorize_url: str
    redirect_uri: str = Field(description="the callback URL to register at the provider")
    expires_in: int


class OAuthAppPut(StrictModel):
    """The tenant's OAuth client at a provider."""

    client_id: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^\S+$")]
    client_secret: Secret
    scopes: Annotated[list[Scope], Field(max_length=100)] | None = None


class OAuthAppPublic(BaseModel):
    id: str
    tenant_id: str
    provider: str
    client_id: str
    scopes: list[str] | None
    redirect_uri: str
    created_at: datetime
    updated_at: datetime


class ProviderPublic(BaseModel):
    name: str
    display_name: str
    categories: list[str]
    auth_modes: list[str]
    base_url: str
    docs_url: str | None
    default_scopes: list[str]
    api_version: dict[str, str] | None
    rate_limits: list[dict[str, Any]]
    health_probe: dict[str, Any] | None
    webhook_verifier: str | None


class ProviderHealth(BaseModel):
    provider: str
    status: Literal["healthy", "degraded", "down", "unknown"]
    circuit_breakers: dict[str, str]
    recent_calls: int
    error_rate: float
    connections: dict[str, int]
    probes: dict[str, int]
