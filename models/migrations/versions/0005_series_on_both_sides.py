"""an occurrence's link keeps its series' id on each side, not only on its origin: a person
may add an exception to calsync's copy of a series, and deleting that series must still find
the exception's link

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_links_series", table_name="links")
    op.drop_column("links", "series_id")
    op.add_column("links", sa.Column("wix_series_id", sa.String(length=250), nullable=True))
    op.add_column("links", sa.Column("external_series_id", sa.String(length=1024), nullable=True))
    op.create_index("ix_links_wix_series", "links", ["calendar_id", "wix_series_id"])
    op.create_index("ix_links_external_series", "links", ["calendar_id", "external_series_id"])
    # Until the next full run of their calendar rewrites the keys, every link is looked at.
    op.execute(sa.text("UPDATE links SET unsettled = true"))


def downgrade() -> None:
    op.drop_index("ix_links_external_series", table_name="links")
    op.drop_index("ix_links_wix_series", table_name="links")
    op.drop_column("links", "external_series_id")
    op.drop_column("links", "wix_series_id")
    op.add_column("links", sa.Column("series_id", sa.String(length=1024), nullable=True))
    op.create_index("ix_links_series", "links", ["calendar_id", "series_id"])
    op.execute(sa.text("UPDATE links SET unsettled = true"))
