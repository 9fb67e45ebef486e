"""The test call's figures (issue 14, remote support): measured by the server's automatic
answerer and kept on the ``test_call`` action's row (``docs/line-test.md``).

Revision ID: 0015_testcall
Revises: 0014_rollout
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_testcall"
down_revision: str | None = "0014_rollout"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("measurements", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("measurements")
