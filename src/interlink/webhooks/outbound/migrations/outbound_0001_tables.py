"""outbound webhook tables

Revision ID: outbound_0001
Revises: (none; the root of the outbound branch, after core_0001)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import interlink.store.types

revision = "outbound_0001"
down_revision = None
branch_labels = ("outbound",)
depends_on = "core_0001"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when() -> interlink.store.types.UTCDateTime:
    return interlink.store.types.UTCDateTime(timezone=True)


def _id() -> sa.String:
    return sa.String(length=40)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def _indexes(table: str, *column_sets: list[str]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for columns in column_sets:
            batch_op.create_index(
                batch_op.f(f"ix_{table}_{'_'.join(columns)}"), columns, unique=False
            )


def upgrade() -> None:
    op.create_table(
        "outbound_event_types",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("schema", _json(), nullable=True),
        sa.Column("archived", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_outbound_event_types")),
    )
    op.create_table(
        "outbound_endpoints",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("event_types", _json(), nullable=True),
        sa.Column("filter", _json(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("headers", _json(), nullable=False),
        sa.Column("rate_limit", sa.Float(), nullable=True),
        sa.Column("rate_limit_tat", sa.Float(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("retry_schedule", sa.String(length=500), nullable=True),
        sa.Column("auth", sa.Text(), nullable=True),
        sa.Column("auth_type", sa.String(length=30), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", _when(), nullable=True),
        sa.Column("signing_key", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("first_failure_at", _when(), nullable=True),
        sa.Column("last_failure_at", _when(), nullable=True),
        sa.Column("last_success_at", _when(), nullable=True),
        sa.Column("next_attempt_not_before", _when(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        _fk("outbound_endpoints", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_endpoints")),
    )
    _indexes("outbound_endpoints", ["tenant_id", "id"])
    op.create_table(
        "outbound_messages",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("payload", _json(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("ordering_key", sa.String(length=200), nullable=True),
        sa.Column("source_event_id", _id(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("payload_purged_at", _when(), nullable=True),
        _fk("outbound_messages", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_outbound_messages_tenant_id_idempotency_key"),
        ),
    )
    _indexes("outbound_messages", ["created_at"], ["tenant_id", "id"])
    op.create_table(
        "outbound_deliveries",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("message_id", _id(), nullable=False),
        sa.Column("endpoint_id", _id(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("round_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", _when(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("ordering_key", sa.String(length=200), nullable=True),
        sa.Column("order_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        _fk("outbound_deliveries", "message_id", "outbound_messages"),
        _fk("outbound_deliveries", "endpoint_id", "outbound_endpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_deliveries")),
        sa.UniqueConstraint(
            "message_id", "endpoint_id", name=op.f("uq_outbound_deliveries_message_id_endpoint_id")
        ),
    )
    _indexes(
        "outbound_deliveries",
        ["endpoint_id", "ordering_key", "order_seq"],
        ["endpoint_id", "status", "updated_at"],
    )
    op.create_table(
        "outbound_order_keys",
        sa.Column("endpoint_id", _id(), nullable=False),
        sa.Column("ordering_key", sa.String(length=200), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("head_delivery_id", _id(), nullable=True),
        _fk("outbound_order_keys", "endpoint_id", "outbound_endpoints"),
        sa.PrimaryKeyConstraint("endpoint_id", "ordering_key", name=op.f("pk_outbound_order_keys")),
    )
    op.create_table(
        "outbound_attempts",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("message_id", _id(), nullable=False),
        sa.Column("endpoint_id", _id(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("response_status_code", sa.Integer(), nullable=True),
        sa.Column("response_headers", _json(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(length=50), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_attempts")),
    )
    _indexes("outbound_attempts", ["endpoint_id", "id"], ["message_id", "id"], ["tenant_id", "id"])


def downgrade() -> None:
    for name in (
        "outbound_attempts",
        "outbound_order_keys",
        "outbound_deliveries",
        "outbound_messages",
        "outbound_endpoints",
        "outbound_event_types",
    ):
        op.drop_table(name)
