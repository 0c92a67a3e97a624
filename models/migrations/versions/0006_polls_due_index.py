"""the dispatcher finds due polls by an index, as it finds due reconciliations

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_connections_polls_due", "connections", ["status", "next_poll_at"])


def downgrade() -> None:
    op.drop_index("ix_connections_polls_due", table_name="connections")
