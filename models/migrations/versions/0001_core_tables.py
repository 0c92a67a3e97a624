"""core tables

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("wix_instance_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum("ACTIVE", "DISABLED", name="tenantstatus", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column("api_key_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_tenants_api_key_hash")),
        sa.UniqueConstraint("wix_instance_id", name=op.f("uq_tenants_wix_instance_id")),
    )
    op.create_table(
        "connections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column(
            "provider",
            sa.Enum(
                "google",
                "microsoft",
                "apple",
                "caldav",
                name="provider",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("schedule_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("external_account_email", sa.String(length=320), nullable=True),
        sa.Column("server_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "CONNECTED",
                "SYNC_IN_PROGRESS",
                "SYNCED",
                "DISCONNECTED",
                "ERROR",
                name="connectionstatus",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column(
            "error_reason",
            sa.Enum(
                "TOKEN_REVOKED",
                "EXTERNAL_CALENDAR_CREATION_FAILED",
                "EXTERNAL_CALENDAR_DELETED",
                name="errorreason",
                native_enum=False,
                length=40,
            ),
            nullable=True,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "sync_config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("next_reconcile_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index("ix_connections_due", ["status", "next_reconcile_at"], unique=False)
        batch_op.create_index(
            "ix_connections_tenant_schedule", ["tenant_id", "schedule_id"], unique=False
        )

    op.create_table(
        "external_calendars",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("remote_id", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("import_enabled", sa.Boolean(), nullable=False),
        sa.Column("export_target", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("wix_cursor", sa.Text(), nullable=True),
        sa.Column("cursor_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_external_calendars_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_calendars")),
        sa.UniqueConstraint(
            "connection_id", "remote_id", name=op.f("uq_external_calendars_connection_id_remote_id")
        ),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("calendar_id", sa.String(length=32), nullable=False),
        sa.Column("change_key", sa.String(length=300), nullable=False),
        sa.Column(
            "action",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "FAILING",
                "PARKED",
                "RETRYING",
                name="deadletterstatus",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["external_calendars.id"],
            name=op.f("fk_dead_letters_calendar_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_dead_letters_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint(
            "calendar_id", "change_key", name=op.f("uq_dead_letters_calendar_id_change_key")
        ),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letters_status", ["status"], unique=False)

    op.create_table(
        "inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key", sa.String(length=512), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=True),
        sa.Column("calendar_id", sa.String(length=32), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "RECEIVED",
                "ENQUEUED",
                "DONE",
                "DEAD",
                name="inboxstatus",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["external_calendars.id"],
            name=op.f("fk_inbox_calendar_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inbox_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint(
            "provider", "idempotency_key", name=op.f("uq_inbox_provider_idempotency_key")
        ),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_status_received", ["status", "received_at"], unique=False)

    op.create_table(
        "links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("calendar_id", sa.String(length=32), nullable=False),
        sa.Column("wix_event_id", sa.String(length=250), nullable=True),
        sa.Column("external_event_id", sa.String(length=1024), nullable=True),
        sa.Column(
            "origin",
            sa.Enum("wix", "external", name="side", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column("wix_version", sa.String(length=200), nullable=True),
        sa.Column("external_version", sa.String(length=200), nullable=True),
        sa.Column(
            "base",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "wix_seen",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "external_seen",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "wix_overrides",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["external_calendars.id"],
            name=op.f("fk_links_calendar_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_links_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint(
            "calendar_id", "external_event_id", name=op.f("uq_links_calendar_id_external_event_id")
        ),
        sa.UniqueConstraint(
            "connection_id", "wix_event_id", name=op.f("uq_links_connection_id_wix_event_id")
        ),
    )
    op.create_table(
        "push_channels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("calendar_id", sa.String(length=32), nullable=False),
        sa.Column(
            "provider",
            sa.Enum(
                "google",
                "microsoft",
                "apple",
                "caldav",
                name="provider",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("resource_id", sa.String(length=1024), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum("ACTIVE", "STOPPED", name="channelstatus", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["external_calendars.id"],
            name=op.f("fk_push_channels_calendar_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_channels")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_push_channels_channel_id")),
    )
    with op.batch_alter_table("push_channels", schema=None) as batch_op:
        batch_op.create_index("ix_push_channels_renewal", ["status", "expires_at"], unique=False)

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("calendar_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "RUNNING", "SUCCEEDED", "FAILED", name="runstatus", native_enum=False, length=40
            ),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("lag_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["external_calendars.id"],
            name=op.f("fk_sync_runs_calendar_id_external_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_sync_runs_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_runs_calendar_started", ["calendar_id", "started_at"], unique=False
        )

    op.create_table(
        "conflicts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("link_id", sa.String(length=64), nullable=True),
        sa.Column("sync_run_id", sa.String(length=32), nullable=True),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column(
            "base_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "wix_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "external_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("policy", sa.String(length=20), nullable=False),
        sa.Column(
            "winner",
            sa.Enum("wix", "external", name="side", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("OPEN", "ACKNOWLEDGED", name="conflictstatus", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_conflicts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("fk_conflicts_link_id_links"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"],
            ["sync_runs.id"],
            name=op.f("fk_conflicts_sync_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts")),
    )
    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conflicts_connection_status", ["connection_id", "status"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("conflicts", schema=None) as batch_op:
        batch_op.drop_index("ix_conflicts_connection_status")

    op.drop_table("conflicts")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_runs_calendar_started")

    op.drop_table("sync_runs")
    with op.batch_alter_table("push_channels", schema=None) as batch_op:
        batch_op.drop_index("ix_push_channels_renewal")

    op.drop_table("push_channels")
    op.drop_table("links")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_status_received")

    op.drop_table("inbox")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_status")

    op.drop_table("dead_letters")
    op.drop_table("external_calendars")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index("ix_connections_tenant_schedule")
        batch_op.drop_index("ix_connections_due")

    op.drop_table("connections")
    op.drop_table("tenants")
