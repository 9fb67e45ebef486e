"""Indexes for the paged lists (issue 17): each list's sort order, and the filters that would
otherwise read a year of rows to fill one page.

- devices: by ``(site, id)``, the fleet table's order, in place of site alone (the first page
  no longer sorts a whole site's counters);
- alerts: open ones by ``(raised_at, id)`` and cleared ones by ``(cleared_at, id)``, each a
  partial index of its own list (the alerts page's two lists, newest first);
- calls: by site and by outcome (``end_reason``), then time (the call log's filters);
- audit_log: by action then time, in place of the index on action alone.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("cleared_at IS NULL")
CLEARED = sa.text("cleared_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_devices_site_id", "devices", ["site", "id"])
    op.drop_index("ix_devices_site", table_name="devices")
    op.create_index(
        "ix_alerts_open_raised",
        "alerts",
        ["raised_at", "id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index(
        "ix_alerts_cleared",
        "alerts",
        ["cleared_at", "id"],
        sqlite_where=CLEARED,
        postgresql_where=CLEARED,
    )
    op.create_index("ix_calls_site_requested", "calls", ["site", "requested_at"])
    op.create_index("ix_calls_end_reason_requested", "calls", ["end_reason", "requested_at"])
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    op.drop_index("ix_audit_log_action", table_name="audit_log")


def downgrade() -> None:
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.drop_index("ix_audit_log_action_at", table_name="audit_log")
    op.drop_index("ix_calls_end_reason_requested", table_name="calls")
    op.drop_index("ix_calls_site_requested", table_name="calls")
    op.drop_index("ix_alerts_cleared", table_name="alerts")
    op.drop_index("ix_alerts_open_raised", table_name="alerts")
    op.create_index("ix_devices_site", "devices", ["site"])
    op.drop_index("ix_devices_site_id", table_name="devices")
