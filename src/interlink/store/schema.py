"""The core tables. Capabilities add theirs to the same ``metadata`` from their own folders."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from interlink.store.types import JSONType, UTCDateTime

__all__ = [
    "api_keys",
    "audit_log",
    "events",
    "jobs",
    "meta",
    "metadata",
    "rate_buckets",
    "tenants",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

ID = String(40)

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    Column("scope", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index(None, "tenant_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("tenant_id", ID, nullable=True),
    Column("payload", JSONType, nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_token", String(40), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("worker_id", String(100), nullable=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index(None, "status", "run_at"),
    Index(None, "status", "lease_expires_at"),
    Index(None, "kind", "status"),
)

events = Table(
    "events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("id", ID, nullable=False, unique=True),
    Column("tenant_id", ID, nullable=True),
    Column("type", String(200), nullable=False),
    Column("source", String(500), nullable=False),
    Column("subject", String(500), nullable=True),
    Column("time", UTCDateTime, nullable=False),
    Column("data", JSONType, nullable=False),
    Column("relayed", Boolean, nullable=False, server_default=text("false")),
    Column("relayed_at", UTCDateTime, nullable=True),
    Index(None, "relayed", "seq"),
    Index(None, "tenant_id", "seq"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(200), nullable=True),
    Column("details", JSONType, nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "tenant_id", "id"),
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("at", Float, nullable=False),  # unix seconds of the last refill
)
