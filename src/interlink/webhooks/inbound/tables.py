"""The inbound tables: sources, the received-events log, destinations and forward attempts."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from interlink.store.schema import metadata
from interlink.store.types import JSONType, UTCDateTime

__all__ = ["inbound_destinations", "inbound_events", "inbound_forwards", "inbound_sources"]

ID = String(40)
SHORT = 200

inbound_sources = Table(
    "inbound_sources",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("name", String(SHORT), nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("options", JSONType, nullable=False),
    Column("connection_id", ID, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("max_body_bytes", Integer, nullable=True),
    Column("rate_limit_per_second", Float, nullable=True),
    Column("rate_limit_burst", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("secret_rotated_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id", "id"),
)

inbound_events = Table(
    "inbound_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("source_id", ID, ForeignKey("inbound_sources.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("dedupe_key", String(SHORT), nullable=True),
    Column("delivery_id", String(SHORT), nullable=True),
    Column("event_type", String(SHORT), nullable=True),
    Column("verification", String(16), nullable=False),
    Column("failed_check", String(50), nullable=True),
    Column("error", String(500), nullable=True),
    Column("method", String(10), nullable=False),
    Column("path_qs", Text, nullable=False),
    Column("content_type", String(SHORT), nullable=True),
    Column("headers", JSONType, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("seen_count", Integer, nullable=False, server_default=text("1")),
    Column("suppressed_before", Integer, nullable=False, server_default=text("0")),
    Column("received_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("processing_status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", String(2000), nullable=True),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("replay_count", Integer, nullable=False, server_default=text("0")),
    Column("last_replayed_at", UTCDateTime, nullable=True),
    # Finds an event by its delivery id too (the key is derived from it, rows.dedupe_key): no
    # second index over random ids, which would take each new row at a random page.
    UniqueConstraint("source_id", "dedupe_key"),
    Index(None, "source_id", "id"),
    Index(None, "source_id", "received_at"),
)

inbound_destinations = Table(
    "inbound_destinations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("source_id", ID, ForeignKey("inbound_sources.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", Text, nullable=False),
    Column("description", String(SHORT), nullable=False),
    Column("event_types", JSONType, nullable=True),
    Column("filter", JSONType, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "source_id", "id"),
)

inbound_forwards = Table(
    "inbound_forwards",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("event_id", ID, ForeignKey("inbound_events.id", ondelete="CASCADE"), nullable=False),
    Column("destination_id", ID, nullable=False),
    Column("replay", Integer, nullable=False, server_default=text("0")),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("response_status_code", Integer, nullable=True),
    Column("error_class", String(50), nullable=True),
    Column("last_error", String(2000), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "event_id", "id"),
)
