"""Initial schema: devices, status history, telemetry, events, surveys, commands, alerts, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_telemetry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telemetry_interval_s", sa.Integer(), nullable=False),
        sa.Column("software_version", sa.String(length=64), nullable=True),
        sa.Column("cpu_temperature_c", sa.Float(), nullable=True),
        sa.Column("throttled", sa.Boolean(), nullable=False),
        sa.Column("disk_used_pct", sa.Float(), nullable=True),
        sa.Column("load1", sa.Float(), nullable=True),
        sa.Column("camera_health", sa.String(length=16), nullable=True),
        sa.Column("printer_health", sa.String(length=16), nullable=True),
        sa.Column("printer_detail", sa.String(length=256), nullable=True),
        sa.Column("scanner_health", sa.String(length=16), nullable=True),
        sa.Column("button_health", sa.String(length=16), nullable=True),
        sa.Column("open_alerts", sa.Integer(), nullable=False),
        sa.Column("last_telemetry", sa.JSON(), nullable=True),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_devices_last_seen", "devices", ["last_seen"], unique=False)
    op.create_index("ix_devices_open_alerts", "devices", ["open_alerts"], unique=False)
    op.create_index("ix_devices_site", "devices", ["site"], unique=False)
    op.create_index("ix_devices_state", "devices", ["state"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("site", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=256), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_device_kind", "alerts", ["device_id", "kind"], unique=False)
    op.create_index("ix_alerts_open", "alerts", ["cleared_at", "device_id"], unique=False)
    op.create_index(
        "ux_alerts_open_device_kind",
        "alerts",
        ["device_id", "kind"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "commands",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_commands_device_id", "commands", ["device_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_device_at", "events", ["device_id", "at"], unique=False)
    op.create_index("ix_events_kind", "events", ["kind"], unique=False)

    op.create_table(
        "status_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_status_changes_device_at", "status_changes", ["device_id", "at"], unique=False
    )

    op.create_table(
        "surveys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("questionnaire_version", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_surveys_device_id", "surveys", ["device_id"], unique=False)

    op.create_table(
        "telemetry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_temperature_c", sa.Float(), nullable=True),
        sa.Column("load1", sa.Float(), nullable=False),
        sa.Column("memory_used_pct", sa.Float(), nullable=False),
        sa.Column("disk_used_pct", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_telemetry_at", "telemetry", ["at"], unique=False)
    op.create_index("ix_telemetry_device_at", "telemetry", ["device_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_telemetry_device_at", table_name="telemetry")
    op.drop_index("ix_telemetry_at", table_name="telemetry")

    op.drop_table("telemetry")
    op.drop_index("ix_surveys_device_id", table_name="surveys")

    op.drop_table("surveys")
    op.drop_index("ix_status_changes_device_at", table_name="status_changes")

    op.drop_table("status_changes")
    op.drop_index("ix_events_kind", table_name="events")
    op.drop_index("ix_events_device_at", table_name="events")

    op.drop_table("events")
    op.drop_index("ix_commands_device_id", table_name="commands")

    op.drop_table("commands")
    op.drop_table("api_tokens")
    op.drop_index("ux_alerts_open_device_kind", table_name="alerts")
    op.drop_index("ix_alerts_open", table_name="alerts")
    op.drop_index("ix_alerts_device_kind", table_name="alerts")

    op.drop_table("alerts")
    op.drop_table("users")
    op.drop_index("ix_devices_state", table_name="devices")
    op.drop_index("ix_devices_site", table_name="devices")
    op.drop_index("ix_devices_open_alerts", table_name="devices")
    op.drop_index("ix_devices_last_seen", table_name="devices")

    op.drop_table("devices")
