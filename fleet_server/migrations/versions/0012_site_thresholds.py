"""Offline thresholds per site (issue 14, item 4): a site's own delay, in minutes, before
an offline or silent counter raises its alert; a site without a row keeps the fleet-wide
``GUICHET_ALERT_OFFLINE_AFTER_MIN``.

Revision ID: 0012
Revises: 0011
Create Date: 2027-03-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_thresholds",
        sa.Column("site", sa.String(length=128), nullable=False),
        sa.Column("offline_after_min", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site"),
    )


def downgrade() -> None:
    op.drop_table("site_thresholds")
