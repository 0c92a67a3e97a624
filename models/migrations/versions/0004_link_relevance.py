"""links say what an incremental run needs to know without reading them all: whether the pair
is unsettled (a write owed, a side without its event) and, for an occurrence, its series' id
on its origin side

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing links count as unsettled until the next full run of their calendar reads them.
    op.add_column("links", sa.Column("unsettled", sa.Boolean(), nullable=False,
                                     server_default=sa.true()))  # fmt: skip
    op.add_column("links", sa.Column("series_id", sa.String(length=1024), nullable=True))
    op.create_index("ix_links_unsettled", "links", ["calendar_id", "unsettled"])
    op.create_index("ix_links_series", "links", ["calendar_id", "series_id"])


def downgrade() -> None:
    op.drop_index("ix_links_series", table_name="links")
    op.drop_index("ix_links_unsettled", table_name="links")
    op.drop_column("links", "series_id")
    op.drop_column("links", "unsettled")
