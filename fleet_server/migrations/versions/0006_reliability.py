"""Reliability (issue 12): what a counter reports kept apart from what the server decides.

- devices: the site and name the counter reports (never its authoritative ones), the last
  status applied (its own time and state: a retained replay of it is not news), its clock
  (synchronised or not, offset from the server's receive time);
- status_changes, events, surveys: the counter's own time, as reported (``at`` is the
  server's: receive time, or the counter's when its clock was synchronised);
- broker_links: each ingest's own connection to the broker;
- server_alerts: alerts about the server itself (the broker unreachable).

Revision ID: 0006
Revises: 0004 (chained after 0005 when merged with the security work)
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("reported_site", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("reported_name", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("status_reported_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("status_reported_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("clock_synchronised", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("clock_offset_s", sa.Float(), nullable=True))
    for table in ("status_changes", "events", "surveys"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "broker_links",
        sa.Column("client_id", sa.String(length=128), primary_key=True),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "server_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=256), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ux_server_alerts_open_kind",
        "server_alerts",
        ["kind"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_server_alerts_open_kind", table_name="server_alerts")
    op.drop_table("server_alerts")
    op.drop_table("broker_links")
    for table in ("surveys", "events", "status_changes"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reported_at")
    with op.batch_alter_table("devices") as batch:
        for column in (
            "clock_offset_s",
            "clock_synchronised",
            "status_reported_state",
            "status_reported_at",
            "reported_name",
            "reported_site",
        ):
            batch.drop_column(column)
