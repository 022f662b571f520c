"""connections tables

Revision ID: connections_0001
Revises: (none; the root of the connections branch, after core_0001)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import interlink.store.types

revision = "connections_0001"
down_revision = None
branch_labels = ("connections",)
depends_on = "core_0001"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when() -> interlink.store.types.UTCDateTime:
    return interlink.store.types.UTCDateTime(timezone=True)


def _id() -> sa.String:
    return sa.String(length=40)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("auth_type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("config", _json(), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("credentials_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("expires_at", _when(), nullable=True),
        sa.Column("token_lifetime", sa.Integer(), nullable=True),
        sa.Column("refresh_lease_owner", sa.String(length=80), nullable=True),
        sa.Column("refresh_lease_until", _when(), nullable=True),
        sa.Column("refresh_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_refreshed_at", _when(), nullable=True),
        sa.Column("health_status", sa.String(length=16), nullable=True),
        sa.Column("health_detail", sa.String(length=500), nullable=True),
        sa.Column("health_checked_at", _when(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        _tenant_fk("connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connections_tenant_id_id"), ["tenant_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_connections_provider_status"), ["provider", "status"], unique=False
        )

    op.create_table(
        "connection_oauth_apps",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("client_id", sa.String(length=500), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("scopes", _json(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        _tenant_fk("connection_oauth_apps"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_oauth_apps")),
        sa.UniqueConstraint(
            "tenant_id", "provider", name=op.f("uq_connection_oauth_apps_tenant_id_provider")
        ),
    )

    op.create_table(
        "connection_oauth_states",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", _id(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("connection_id", _id(), nullable=False),
        sa.Column("code_verifier", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("redirect_after", sa.String(length=2000), nullable=True),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("used_at", _when(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        _tenant_fk("connection_oauth_states"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_oauth_states")),
    )
    with op.batch_alter_table("connection_oauth_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connection_oauth_states_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    for name in ("connection_oauth_states", "connection_oauth_apps", "connections"):
        op.drop_table(name)
