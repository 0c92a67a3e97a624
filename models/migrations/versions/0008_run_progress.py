"""a sync run records its plan: how many actions it planned, how many it has applied so far
(the progress of a large first sync), and what it did, counted by action, side, reason code and
outcome

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_runs", sa.Column("planned", sa.Integer(), nullable=True))
    op.add_column("sync_runs", sa.Column("progress", sa.Integer(), nullable=True))
    op.add_column("sync_runs", sa.Column(
        "actions", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=True))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("actions")
        batch.drop_column("progress")
        batch.drop_column("planned")
