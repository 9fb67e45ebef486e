"""Remote support's actions on a counter (issue 14, item 1): on each command's row, when the
server stops waiting for its ack (``expires_at``), who asked (``actor``) and the self-test's
checks as the counter answered them (``checks``). Nullable: commands from before this
revision have none; the page's list of actions reads the device's newest commands first.

Revision ID: 0011
Revises: 0010
Create Date: 2027-03-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("expires_at", sa.DateTime(timezone=True)),
    ("actor", sa.String(length=128)),
    ("checks", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_commands_device_sent", "commands", ["device_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_commands_device_sent", table_name="commands")
    with op.batch_alter_table("commands") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
