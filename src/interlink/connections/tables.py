"""The connections tables: connections, per-tenant OAuth apps and pending OAuth states."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from interlink.store.schema import metadata
from interlink.store.types import JSONType, UTCDateTime

__all__ = ["connections", "oauth_apps", "oauth_states"]

ID = String(40)

connections = Table(
    "connections",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("auth_type", String(16), nullable=False),
    Column("name", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_reason", String(500), nullable=True),
    Column("config", JSONType, nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("scopes", JSONType, nullable=False),
    # Encrypted JSON of the secrets (tokens, keys), bound to the row id by the vault context.
    Column("credentials", Text, nullable=False),
    # Bumped on every credentials change: caches and waiting refreshers compare it.
    Column("credentials_version", Integer, nullable=False, server_default=text("1")),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("token_lifetime", Integer, nullable=True),
    Column("refresh_lease_owner", String(80), nullable=True),
    Column("refresh_lease_until", UTCDateTime, nullable=True),
    Column("refresh_failures", Integer, nullable=False, server_default=text("0")),
    Column("last_refreshed_at", UTCDateTime, nullable=True),
    Column("health_status", String(16), nullable=True),
    Column("health_detail", String(500), nullable=True),
    Column("health_checked_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "id"),
    Index(None, "provider", "status"),
)

oauth_apps = Table(
    "connection_oauth_apps",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("client_id", String(500), nullable=False),
    Column("client_secret", Text, nullable=False),
    Column("scopes", JSONType, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "provider"),
)

oauth_states = Table(
    "connection_oauth_states",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("connection_id", ID, nullable=False),
    Column("code_verifier", Text, nullable=True),
    Column("redirect_uri", String(2000), nullable=False),
    Column("redirect_after", String(2000), nullable=True),
    Column("scopes", JSONType, nullable=False),
    Column("config", JSONType, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "expires_at"),
)
