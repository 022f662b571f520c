"""inbound webhook tables

Revision ID: inbound_0001
Revises: (none; the root of the inbound branch, after core_0001)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import interlink.store.types

revision = "inbound_0001"
down_revision = None
branch_labels = ("inbound",)
depends_on = "core_0001"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when() -> interlink.store.types.UTCDateTime:
    return interlink.store.types.UTCDateTime(timezone=True)


def _id() -> sa.String:
    return sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "inbound_sources",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", _when(), nullable=True),
        sa.Column("options", _json(), nullable=False),
        sa.Column("connection_id", _id(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("max_body_bytes", sa.Integer(), nullable=True),
        sa.Column("rate_limit_per_second", sa.Float(), nullable=True),
        sa.Column("rate_limit_burst", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("secret_rotated_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inbound_sources_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_sources")),
    )
    with op.batch_alter_table("inbound_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_sources_tenant_id_id"), ["tenant_id", "id"], unique=False
        )

    op.create_table(
        "inbound_destinations",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("source_id", _id(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("event_types", _json(), nullable=True),
        sa.Column("filter", _json(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["inbound_sources.id"],
            name=op.f("fk_inbound_destinations_source_id_inbound_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_destinations")),
    )
    with op.batch_alter_table("inbound_destinations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_destinations_source_id_id"), ["source_id", "id"], unique=False
        )

    op.create_table(
        "inbound_events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("source_id", _id(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("delivery_id", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=True),
        sa.Column("verification", sa.String(length=16), nullable=False),
        sa.Column("failed_check", sa.String(length=50), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path_qs", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("headers", _json(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("seen_count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("suppressed_before", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("received_at", _when(), nullable=False),
        sa.Column("last_seen_at", _when(), nullable=False),
        sa.Column("processing_status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("processed_at", _when(), nullable=True),
        sa.Column("replay_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_replayed_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["inbound_sources.id"],
            name=op.f("fk_inbound_events_source_id_inbound_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_events")),
        sa.UniqueConstraint(
            "source_id", "dedupe_key", name=op.f("uq_inbound_events_source_id_dedupe_key")
        ),
    )
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        for columns in (["source_id", "delivery_id"], ["source_id", "id"]):
            batch_op.create_index(
                batch_op.f(f"ix_inbound_events_{'_'.join(columns)}"), columns, unique=False
            )
        batch_op.create_index(
            batch_op.f("ix_inbound_events_source_id_received_at"),
            ["source_id", "received_at"],
            unique=False,
        )

    op.create_table(
        "inbound_forwards",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("event_id", _id(), nullable=False),
        sa.Column("destination_id", _id(), nullable=False),
        sa.Column("replay", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("response_status_code", sa.Integer(), nullable=True),
        sa.Column("error_class", sa.String(length=50), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["inbound_events.id"],
            name=op.f("fk_inbound_forwards_event_id_inbound_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_forwards")),
    )
    with op.batch_alter_table("inbound_forwards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_forwards_event_id_id"), ["event_id", "id"], unique=False
        )


def downgrade() -> None:
    for name in ("inbound_forwards", "inbound_events", "inbound_destinations", "inbound_sources"):
        op.drop_table(name)
