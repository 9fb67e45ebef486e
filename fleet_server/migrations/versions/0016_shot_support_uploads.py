"""Remote support's screenshots and logs (issue 14, items 2 and 3): one file per action,
uploaded by the counter over HTTPS, purged past ``expires_at``.

Revision ID: 0016_shot
Revises: 0015_testcall
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_shot"
down_revision: str | None = "0015_testcall"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_uploads",
        sa.Column(
            "request_id",
            sa.Uuid(),
            sa.ForeignKey("commands.request_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "device_id",
            sa.String(64),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_support_uploads_device_id", "support_uploads", ["device_id"])
    op.create_index("ix_support_uploads_expires_at", "support_uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_support_uploads_expires_at", "support_uploads")
    op.drop_index("ix_support_uploads_device_id", "support_uploads")
    op.drop_table("support_uploads")
