"""a connection keeps its schedule owner's name next to their Wix user id (List Events'
`scheduleOwnerName`), both read from the Wix schedule

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("schedule_owner_name", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("schedule_owner_name")
