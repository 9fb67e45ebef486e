"""Calls: services (seeded with the four first public bodies), counters' call tokens, call log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEED_SERVICES = (
    ("caf", "Caf"),
    ("msa", "MSA"),
    ("france-travail", "France Travail"),
    ("carsat", "Carsat"),
)


def upgrade() -> None:
    services = op.create_table(
        "services",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.bulk_insert(services, [{"code": c, "label": label} for c, label in SEED_SERVICES])

    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("call_token_sha256", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_devices_call_token_sha256", ["call_token_sha256"])

    op.create_table(
        "calls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=128), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["agent_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_calls_device_requested", "calls", ["device_id", "requested_at"], unique=False
    )
    op.create_index(
        "ix_calls_service_requested", "calls", ["service", "requested_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_calls_service_requested", table_name="calls")
    op.drop_index("ix_calls_device_requested", table_name="calls")
    op.drop_table("calls")
    with op.batch_alter_table("devices") as batch:
        batch.drop_constraint("uq_devices_call_token_sha256", type_="unique")
        batch.drop_column("call_token_sha256")
    op.drop_table("services")
