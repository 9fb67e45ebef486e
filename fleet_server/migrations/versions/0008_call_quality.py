"""A call's quality as its counter measured it (issue 19, item 7): the summary of the
counter's ``call_ended`` event on the call's row (``docs/call-quality.md``). Nullable: calls
before this revision, from older counters or never connected have none.

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("measured_s", sa.Float()),
    ("video_kbps_avg", sa.Float()),
    ("video_kbps_min", sa.Float()),
    ("loss_pct", sa.Float()),
    ("rtt_ms", sa.Float()),
    ("freezes", sa.Integer()),
    ("frozen_s", sa.Float()),
    ("rung_steps", sa.Integer()),
    ("lowest_rung", sa.String(length=16)),
    ("audio_gaps_pct", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
