"""Alembic migrations build exactly the schema models.py declares, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fleet_server.db import alembic_config, make_engine, migrate
from fleet_server.models import Base


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(db_url: str) -> None:
    migrate(db_url)
    assert _diff(db_url) == []


def test_migrate_is_idempotent_and_reversible(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # already at head: nothing to do
    command.downgrade(alembic_config(db_url), "base")
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate(db_url)
    assert _diff(db_url) == []
