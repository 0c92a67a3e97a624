"""a calendar keeps the events its provider listed but could not read, with the reason, so
that the connection's status can show them

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("external_calendars", sa.Column(
        "unreadable",
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=True))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("external_calendars") as batch:
        batch.drop_column("unreadable")
