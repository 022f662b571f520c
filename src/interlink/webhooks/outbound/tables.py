"""The outbound tables: event types, endpoints, messages, deliveries, attempts, ordering keys.

A *delivery* is one message to one endpoint; it carries the delivery's state (pending,
succeeded, failed), its attempt count in the current round of the retry schedule and, for
messages with an ``ordering_key``, its place in the key's sequence. ``outbound_order_keys``
holds, per (endpoint, key), the delivery currently at the head (the only one enqueued), so
that concurrent writers serialise on that row. Attempts outlive payload retention.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
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

__all__ = [
    "ENDPOINT_SEND_COLUMNS",
    "outbound_attempts",
    "outbound_deliveries",
    "outbound_endpoints",
    "outbound_event_types",
    "outbound_messages",
    "outbound_order_keys",
]

ID = String(40)
SHORT = 200

outbound_event_types = Table(
    "outbound_event_types",
    metadata,
    Column("name", String(SHORT), primary_key=True),
    Column("description", String(2000), nullable=False),
    Column("schema", JSONType, nullable=True),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

outbound_endpoints = Table(
    "outbound_endpoints",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("description", String(2000), nullable=False),
    Column("event_types", JSONType, nullable=True),
    Column("filter", JSONType, nullable=True),
    Column("metadata", JSONType, nullable=False),
    Column("headers", JSONType, nullable=False),
    Column("rate_limit", Float, nullable=True),
    Column("rate_limit_tat", Float, nullable=True),
    Column("timeout_seconds", Float, nullable=False),
    Column("retry_schedule", String(500), nullable=True),
    Column("auth", Text, nullable=True),
    Column("auth_type", String(30), nullable=True),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("signing_key", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("disabled_reason", String(500), nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("first_failure_at", UTCDateTime, nullable=True),
    Column("last_failure_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("next_attempt_not_before", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "id"),
)

outbound_messages = Table(
    "outbound_messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", String(SHORT), nullable=False),
    Column("payload", JSONType, nullable=True),
    Column("idempotency_key", String(SHORT), nullable=True),
    Column("ordering_key", String(SHORT), nullable=True),
    Column("source_event_id", ID, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("payload_purged_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index(None, "tenant_id", "id"),
    # What the hourly purge has left to do, oldest first (outbound.retention): each index holds
    # only the messages it has yet to change, so a purge never reads the ones already done.
    Index(
        "ix_outbound_messages_unpurged",
        "created_at",
        sqlite_where=text("payload_purged_at IS NULL"),
        postgresql_where=text("payload_purged_at IS NULL"),
    ),
    Index(
        "ix_outbound_messages_keyed",
        "created_at",
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
)

outbound_deliveries = Table(
    "outbound_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column(
        "message_id", ID, ForeignKey("outbound_messages.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "endpoint_id", ID, ForeignKey("outbound_endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("round_attempts", Integer, nullable=False, server_default=text("0")),
    Column("generation", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(2000), nullable=True),
    Column("ordering_key", String(SHORT), nullable=True),
    Column("order_seq", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("message_id", "endpoint_id"),
    Index(None, "endpoint_id", "status", "updated_at"),
    Index(None, "endpoint_id", "ordering_key", "order_seq"),
)

outbound_order_keys = Table(
    "outbound_order_keys",
    metadata,
    Column(
        "endpoint_id",
        ID,
        ForeignKey("outbound_endpoints.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("ordering_key", String(SHORT), primary_key=True),
    Column("last_seq", Integer, nullable=False),
    Column("head_delivery_id", ID, nullable=True),
)

outbound_attempts = Table(
    "outbound_attempts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("message_id", ID, nullable=False),
    Column("endpoint_id", ID, nullable=False),
    Column("event_type", String(SHORT), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("response_status_code", Integer, nullable=True),
    Column("response_headers", JSONType, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("error_class", String(50), nullable=True),
    Column("error", String(2000), nullable=True),
    Column("duration_ms", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "message_id", "id"),
    Index(None, "endpoint_id", "id"),
    Index(None, "tenant_id", "id"),
)

# What sending to an endpoint needs of its row: read by the delivery handler, and by the
# message writer for the deliveries it hands straight to this process's worker.
ENDPOINT_SEND_COLUMNS = (
    outbound_endpoints.c.id,
    outbound_endpoints.c.url,
    outbound_endpoints.c.headers,
    outbound_endpoints.c.timeout_seconds,
    outbound_endpoints.c.retry_schedule,
    outbound_endpoints.c.auth,
    outbound_endpoints.c.secret,
    outbound_endpoints.c.previous_secret,
    outbound_endpoints.c.previous_secret_expires_at,
    outbound_endpoints.c.signing_key,
    outbound_endpoints.c.disabled,
    outbound_endpoints.c.rate_limit,
    outbound_endpoints.c.version,
    outbound_endpoints.c.consecutive_failures,
    outbound_endpoints.c.first_failure_at,
    outbound_endpoints.c.last_success_at,
    outbound_endpoints.c.next_attempt_not_before,
)
