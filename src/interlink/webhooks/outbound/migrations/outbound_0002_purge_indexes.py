"""outbound_messages: partial indexes of what the purge has left to do

The index on created_at made each hourly purge read every message past the idempotency window
and the payload retention, done or not, to find the few that were not. Each partial index holds
only the messages its purge has yet to change.

Revision ID: outbound_0002
Revises: outbound_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "outbound_0002"
down_revision = "outbound_0001"
branch_labels = None
depends_on = None

_UNPURGED = "payload_purged_at IS NULL"
_KEYED = "idempotency_key IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_outbound_messages_created_at", table_name="outbound_messages")
    for name, where in (("ix_outbound_messages_unpurged", _UNPURGED),
                        ("ix_outbound_messages_keyed", _KEYED)):  # fmt: skip
        op.create_index(
            name,
            "outbound_messages",
            ["created_at"],
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    op.drop_index("ix_outbound_messages_keyed", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_unpurged", table_name="outbound_messages")
    op.create_index("ix_outbound_messages_created_at", "outbound_messages", ["created_at"])
