"""Schedules, appointments, questionnaire versions, survey statistics columns, iCal tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# National numbers of the seeded services (MSA's depends on the region: set by the admin).
SEED_PHONES = {"caf": "3230", "france-travail": "3949", "carsat": "3960"}
SEED_ORDER = ("caf", "msa", "france-travail", "carsat")

# The first questionnaire, frozen here as it was shipped (later edits are new versions).
FIRST_QUESTIONS = [
    {
        "key": "dealt_with",
        "text": "Votre demande a-t-elle été traitée ?",
        "kind": "choice",
        "choices": [
            {"value": "yes", "label": "Oui", "km": None},
            {"value": "partly", "label": "En partie", "km": None},
            {"value": "no", "label": "Non", "km": None},
        ],
    },
    {
        "key": "satisfaction",
        "text": "Êtes-vous satisfait de cet échange ?",
        "kind": "faces",
        "choices": [],
    },
    {
        "key": "travel",
        "text": "Sans ce guichet, vous seriez-vous déplacé ?",
        "kind": "choice",
        "choices": [
            {"value": "no", "label": "Non", "km": 0},
            {"value": "lt10", "label": "Oui, moins de 10 km", "km": 5},
            {"value": "10to30", "label": "Oui, de 10 à 30 km", "km": 20},
            {"value": "gt30", "label": "Oui, plus de 30 km", "km": 45},
        ],
    },
]


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("appointment_minutes", sa.Integer(), nullable=False, server_default="30")
        )
        batch.add_column(sa.Column("fallback_s", sa.Integer(), nullable=False, server_default="30"))
        batch.add_column(sa.Column("position", sa.Integer(), nullable=False, server_default="0"))
    services = sa.table(
        "services",
        sa.column("code", sa.String),
        sa.column("phone", sa.String),
        sa.column("position", sa.Integer),
    )
    for position, code in enumerate(SEED_ORDER):
        op.execute(
            services.update()
            .where(services.c.code == code)
            .values(phone=SEED_PHONES.get(code), position=position)
        )

    op.create_table(
        "schedule_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["service"], ["services.code"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedule_rules_site", "schedule_rules", ["site"], unique=False)
    op.create_table(
        "permanences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("half", sa.String(length=2), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("agents", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["service"], ["services.code"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_permanences_day", "permanences", ["day"], unique=False)
    op.create_table(
        "schedule_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("site", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["service"], ["services.code"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedule_exceptions_day", "schedule_exceptions", ["day"], unique=False)
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column("citizen_name", sa.String(length=64), nullable=True),
        sa.Column("citizen_phone", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("personal_data_erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["service"], ["services.code"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["agent_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_appointments_device_start", "appointments", ["device_id", "start"], unique=False
    )
    op.create_index(
        "ix_appointments_agent_start", "appointments", ["agent_user_id", "start"], unique=False
    )
    questionnaires = op.create_table(
        "questionnaires",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("spoken", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.bulk_insert(
        questionnaires,
        [
            {
                "version": 1,
                "questions": FIRST_QUESTIONS,
                "timeout_s": 30,
                "spoken": False,
                "created_at": datetime(2026, 11, 29, tzinfo=UTC),
                "created_by": "installation",
            }
        ],
    )
    with op.batch_alter_table("surveys") as batch:
        batch.add_column(sa.Column("service", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("site", sa.String(length=128), nullable=False, server_default="")
        )
    # The monthly statistics scan one month of calls and questionnaires across all counters.
    op.create_index("ix_calls_requested_at", "calls", ["requested_at"], unique=False)
    op.create_index("ix_surveys_at", "surveys", ["at"], unique=False)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("ical_token_sha256", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_users_ical_token_sha256", ["ical_token_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_ical_token_sha256", type_="unique")
        batch.drop_column("ical_token_sha256")
    op.drop_index("ix_surveys_at", table_name="surveys")
    op.drop_index("ix_calls_requested_at", table_name="calls")
    with op.batch_alter_table("surveys") as batch:
        batch.drop_column("site")
        batch.drop_column("service")
    op.drop_table("questionnaires")
    op.drop_index("ix_appointments_agent_start", table_name="appointments")
    op.drop_index("ix_appointments_device_start", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index("ix_schedule_exceptions_day", table_name="schedule_exceptions")
    op.drop_table("schedule_exceptions")
    op.drop_index("ix_permanences_day", table_name="permanences")
    op.drop_table("permanences")
    op.drop_index("ix_schedule_rules_site", table_name="schedule_rules")
    op.drop_table("schedule_rules")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("position")
        batch.drop_column("fallback_s")
        batch.drop_column("appointment_minutes")
        batch.drop_column("phone")
