"""a synced calendar the account no longer lists is marked with when it was found gone, instead
of being removed with its links

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("external_calendars", sa.Column("gone_at", sa.DateTime(timezone=True),
                                                  nullable=True))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("external_calendars") as batch:
        batch.drop_column("gone_at")
