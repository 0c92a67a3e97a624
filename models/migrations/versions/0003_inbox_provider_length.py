"""inbox.provider as long as the provider ids of connections and channels (a plugged-in
calendar system's id may be longer than the built-in ones)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as table:
        table.alter_column("provider", type_=sa.String(length=40),
                           existing_type=sa.String(length=20), existing_nullable=False)  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("inbox") as table:
        table.alter_column("provider", type_=sa.String(length=20),
                           existing_type=sa.String(length=40), existing_nullable=False)  # fmt: skip
