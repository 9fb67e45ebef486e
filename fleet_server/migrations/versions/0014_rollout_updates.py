"""Software updates from afar (issue 13, docs/updates.md): uploaded releases, rollouts, each
counter's update in a rollout, and each counter's latest update progress on ``devices``.

Revision ID: 0014_rollout
Revises: 0013
Create Date: 2027-03-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_rollout"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEVICE_COLUMNS = ("update_state", "update_release", "update_percent", "update_reason", "update_at")


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("compatible", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signer", sa.String(length=512), nullable=True),
        sa.Column("adaptive", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wave_specs", sa.JSON(), nullable=False),
        sa.Column("waves", sa.JSON(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_failures", sa.Integer(), nullable=True),
        sa.Column("max_failure_pct", sa.Float(), nullable=True),
        sa.Column("wave_timeout_s", sa.Integer(), nullable=False),
        sa.Column("margin_s", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("night_start", sa.Time(), nullable=True),
        sa.Column("night_end", sa.Time(), nullable=True),
        sa.Column("failures_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    op.create_table(
        "counter_updates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=512), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rollout_id", "device_id"),
    )
    op.create_index("ix_counter_updates_device_id", "counter_updates", ["device_id"])
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("update_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("update_release", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("update_percent", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("update_reason", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("update_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for column in DEVICE_COLUMNS:
            batch.drop_column(column)
    op.drop_index("ix_counter_updates_device_id", table_name="counter_updates")
    op.drop_table("counter_updates")
    op.drop_index("ix_rollouts_state", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("releases")
