"""Request and answer shapes of the inbound management API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from interlink.api.errors import Problem
from interlink.api.models import JSONObject, Name, StrictModel

__all__ = [
    "DestinationCreate",
    "DestinationCreated",
    "DestinationPublic",
    "DestinationSecret",
    "DestinationUpdate",
    "ForwardPublic",
    "RangeReplay",
    "RangeReplayed",
    "RateLimit",
    "ReceivedEventDetail",
    "ReceivedEventSummary",
    "ReplayAccepted",
    "SecretRotate",
    "SourceCreate",
    "SourcePublic",
    "SourceUpdate",
    "aware",
]

MAX_BODY_LIMIT = 25 * 1024 * 1024


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def aware(moment: datetime | None, name: str) -> datetime | None:
    """``moment`` as an aware UTC datetime (naive means UTC); 422 when out of range."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as error:
        raise Problem(422, f"{name}: the time is out of range") from error


Secret = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_no_nul)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
]
EventTypePattern = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)
]
Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://"),
    AfterValidator(_no_nul),
]
Description = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]
BodyLimit = Annotated[int, Field(ge=1, le=MAX_BODY_LIMIT)]
_CONNECTION_ID = (
    "A connection of the same tenant (con_...) whose sync triggers this source's events call; "
    "any other id answers 422"
)


class RateLimit(StrictModel):
    per_second: float = Field(gt=0, le=1_000_000, description="Sustained requests a second")
    burst: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Bucket size (default: 2 s worth)"
    )


class SourceCreate(StrictModel):
    provider: Annotated[str, StringConstraints(min_length=1, max_length=50)] = Field(
        description="stripe, github, shopify, slack, twilio, hubspot, standard-webhooks, svix "
        "or hmac"
    )
    secret: Secret = Field(description="The signing secret the provider gave you")
    name: Name | None = None
    options: JSONObject | None = Field(default=None, description="Verifier options")
    connection_id: Identifier | None = Field(default=None, description=_CONNECTION_ID)
    enabled: bool = True
    max_body_bytes: BodyLimit | None = None
    rate_limit: RateLimit | None = None


class SourceUpdate(StrictModel):
    name: Name | None = None
    options: JSONObject | None = None
    connection_id: Identifier | None = Field(
        default=None, description=_CONNECTION_ID + "; null unbinds the source"
    )
    enabled: bool | None = None
    max_body_bytes: BodyLimit | None = None
    rate_limit: RateLimit | None = None


class SecretRotate(StrictModel):
    secret: Secret
    grace_seconds: float = Field(
        default=0, ge=0, le=7 * 86400, description="How long the old secret stays valid"
    )


class SourcePublic(StrictModel):
    id: str
    tenant_id: str
    provider: str
    name: str
    options: dict[str, Any]
    connection_id: str | None
    enabled: bool
    max_body_bytes: int | None
    rate_limit: RateLimit | None
    ingest_url: str
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None


class ReceivedEventSummary(StrictModel):
    id: str
    tenant_id: str
    source_id: str
    status: Literal["accepted", "rejected"]
    seen_count: int
    dedupe_key: str | None
    delivery_id: str | None
    event_type: str | None
    verification: str
    failed_check: str | None
    error: str | None
    method: str
    path_qs: str
    content_type: str | None
    suppressed_before: int
    received_at: datetime
    last_seen_at: datetime
    processing_status: str
    attempts: int
    last_error: str | None
    processed_at: datetime | None
    replay_count: int
    last_replayed_at: datetime | None


class ForwardPublic(StrictModel):
    id: str
    destination_id: str
    replay: int
    status: str
    attempts: int
    response_status_code: int | None
    error_class: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class ReceivedEventDetail(ReceivedEventSummary):
    headers: dict[str, str]
    body: str
    body_encoding: Literal["utf-8", "base64"]
    forwards: list[ForwardPublic]


class ReplayAccepted(StrictModel):
    event_id: str
    replay: int
    job_id: str | None


class RangeReplay(StrictModel):
    since: datetime
    until: datetime | None = None


class RangeReplayed(StrictModel):
    replayed: int
    more: bool = Field(description=f"More than {10_000} events matched; replay the rest next")


class DestinationCreate(StrictModel):
    url: Url
    description: Description | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, max_length=100)
    filter: JSONObject | None = None
    enabled: bool = True


class DestinationUpdate(StrictModel):
    url: Url | None = None
    description: Description | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, max_length=100)
    filter: JSONObject | None = None
    enabled: bool | None = None


class DestinationPublic(StrictModel):
    id: str
    tenant_id: str
    source_id: str
    url: str
    description: str
    event_types: list[str] | None
    filter: dict[str, Any] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DestinationCreated(DestinationPublic):
    secret: str


class DestinationSecret(StrictModel):
    secret: str
