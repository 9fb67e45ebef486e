"""The daily summary e-mail (issue 14, item 4): an option on each e-mail target. The
summaries themselves are rows of ``notification_deliveries`` (event ``summary``, the day as
``alert_id``), so its unique index sends one per (target, day).

Revision ID: 0013
Revises: 0012
Create Date: 2027-03-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification_targets") as batch:
        batch.add_column(
            sa.Column("summary", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_targets") as batch:
        batch.drop_column("summary")
