"""Request and response shapes of the outbound routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from interlink.api.models import JSONObject, StrictModel, Text

__all__ = [
    "AttemptPublic",
    "EndpointCreate",
    "EndpointPublic",
    "EndpointSecret",
    "EndpointUpdate",
    "EventTypeCreate",
    "EventTypePublic",
    "EventTypeUpdate",
    "MessageCreate",
    "MessagePublic",
    "RecoverRequest",
    "RecoverResult",
    "SecretRotate",
]

Key = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
EventTypeName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~\-]{1,100}$")]
HeaderValue = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[\x20-\x7e]*$")]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[\x21-\x7e]+$")]
Pem = Annotated[str, StringConstraints(min_length=1, max_length=20_000, pattern=r"^[\x09-\x7e]+$")]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class BasicAuth(StrictModel):
    type: Literal["basic"]
    username: HeaderValue
    password: HeaderValue

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        # "a:b" with password "c" would be sent as a:b:c, read by the receiver as user "a".
        if ":" in value:
            raise ValueError("a Basic auth user-id cannot hold ':' (RFC 7617 section 2)")
        return value


class HeaderAuth(StrictModel):
    type: Literal["header"]
    name: HeaderName
    value: HeaderValue


class OAuth2ClientCredentials(StrictModel):
    type: Literal["oauth2_client_credentials"]
    token_url: Url
    client_id: HeaderValue
    client_secret: HeaderValue
    scope: HeaderValue | None = None
    audience: HeaderValue | None = None


class ClientCertificateAuth(StrictModel):
    type: Literal["mtls"]
    cert_pem: Pem
    key_pem: Pem
    ca_pem: Pem | None = None


EndpointAuth = Annotated[
    BasicAuth | HeaderAuth | OAuth2ClientCredentials | ClientCertificateAuth,
    Field(discriminator="type"),
]


class _EndpointFields(StrictModel):
    description: Text | None = None
    event_types: list[EventTypeName] | None = Field(default=None, max_length=500)
    filter: JSONObject | None = None
    metadata: dict[str, Annotated[str, StringConstraints(max_length=1000)]] | None = None
    headers: dict[HeaderName, HeaderValue] | None = Field(default=None, max_length=50)
    rate_limit: float | None = Field(default=None, gt=0, le=100_000, description="Deliveries/s")
    timeout_seconds: float | None = Field(default=None, ge=1, le=60)
    retry_schedule: Annotated[str, StringConstraints(max_length=500)] | None = None
    disabled: bool | None = None
    auth: EndpointAuth | None = None


class EndpointCreate(_EndpointFields):
    url: Url
    secret: Secret | None = Field(default=None, description="whsec_...; generated when absent")
    asymmetric: bool = Field(default=False, description="Also sign v1a with an ed25519 key")


class EndpointUpdate(_EndpointFields):
    url: Url | None = None


class EndpointPublic(BaseModel):
    id: str
    tenant_id: str
    url: str
    description: str
    event_types: list[str] | None
    filter: dict[str, Any] | None
    metadata: dict[str, Any]
    headers: dict[str, str]
    rate_limit: float | None
    timeout_seconds: float
    retry_schedule: str | None
    auth_type: str | None
    public_key: str | None
    disabled: bool
    disabled_reason: str | None
    health: dict[str, Any]
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(default=None, description="Only in the answer to create")


class EndpointSecret(BaseModel):
    key: str
    previous_key_expires_at: datetime | None = None
    public_key: str | None = None


class SecretRotate(StrictModel):
    key: Secret | None = Field(default=None, description="whsec_...; generated when absent")
    grace_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400)


class RecoverRequest(StrictModel):
    since: datetime


class RecoverResult(BaseModel):
    resent: int


class MessageCreate(StrictModel):
    event_type: EventTypeName
    payload: JSONObject
    id: Key | None = Field(default=None, description="Idempotency key: a repeat is the same")
    ordering_key: Key | None = None


class MessagePublic(BaseModel):
    id: str
    tenant_id: str
    event_type: str
    payload: dict[str, Any] | None
    idempotency_key: str | None
    ordering_key: str | None
    payload_purged: bool
    created_at: datetime
    deliveries: list[dict[str, Any]] | None = None


class AttemptPublic(BaseModel):
    id: str
    message_id: str
    endpoint_id: str
    event_type: str
    status: str
    trigger: str
    url: str
    response_status_code: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    error_class: str | None
    error: str | None
    duration_ms: float
    created_at: datetime


class EventTypeCreate(StrictModel):
    name: EventTypeName
    description: Text = ""
    schema_: JSONObject | None = Field(default=None, alias="schema")
    archived: bool = False


class EventTypeUpdate(StrictModel):
    description: Text | None = None
    schema_: JSONObject | None = Field(default=None, alias="schema")
    archived: bool | None = None


class EventTypePublic(BaseModel):
    name: str
    description: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    archived: bool
    created_at: datetime

    model_config = ConfigDict(populate_by_name=True)
