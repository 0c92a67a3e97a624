"""a business is told once when a connection breaks: the tenant's email address and signed
webhook to tell, the connection's break (since when, failed runs in a row), and one row per
break recording what went out

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REASONS = ("TOKEN_REVOKED", "EXTERNAL_CALENDAR_CREATION_FAILED", "EXTERNAL_CALENDAR_DELETED",
           "REFUSED", "REPEATED_FAILURES")  # fmt: skip


def upgrade() -> None:
    op.add_column("tenants", sa.Column("alert_email", sa.String(length=320), nullable=True))
    op.add_column("tenants", sa.Column("alert_webhook_url", sa.String(length=2048), nullable=True))
    op.add_column("tenants", sa.Column("alert_webhook_secret", sa.Text(), nullable=True))
    op.add_column("connections", sa.Column("broken_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("connections", sa.Column("failed_runs", sa.Integer(), nullable=False,
                                           server_default="0"))  # fmt: skip
    op.create_table(
        "break_alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("broken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(*REASONS, name="breakreason", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("webhook_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_break_alerts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_alerts")),
        sa.UniqueConstraint(
            "connection_id", "broken_at", name=op.f("uq_break_alerts_connection_id_broken_at")
        ),
    )


def downgrade() -> None:
    op.drop_table("break_alerts")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("failed_runs")
        batch.drop_column("broken_at")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("alert_webhook_secret")
        batch.drop_column("alert_webhook_url")
        batch.drop_column("alert_email")
