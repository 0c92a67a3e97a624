"""a v1 sync request records the account that approved it, and when its approver confirmed an
account other than the one the request was sent to

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_requests", sa.Column("approved_by", sa.String(length=320), nullable=True))
    op.add_column("sync_requests", sa.Column("confirmed_at", sa.DateTime(timezone=True),
                                             nullable=True))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("sync_requests") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("approved_by")
