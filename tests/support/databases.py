"""Fresh databases for one test: an SQLite file, or a new PostgreSQL database."""

from __future__ import annotations

import atexit
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from fleet_server.db import migrate

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("GUICHET_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
        return
    admin = make_url(postgres_admin_url())
    name = f"guichet_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available() -> bool:
    """Whether a PostgreSQL server answers (the benchmarks then measure it too)."""
    try:
        with tempfile.TemporaryDirectory() as tmp, fresh_database("postgresql", Path(tmp)):
            return True
    except Exception:
        return False


# --- migrated databases, fast ------------------------------------------------------------
# Hundreds of tests start from an empty database brought to the latest schema. Running the
# Alembic chain each time costs ~0.3 s; copying a database migrated once per test run costs
# a few milliseconds. The migrations themselves are exercised from scratch (upgrade,
# downgrade, schema equal to the models) in tests/fleet_server/test_migrations.py.

_templates: dict[str, str] = {}
_templates_lock = threading.Lock()


def migrate_fresh(url: str) -> None:
    """Bring the database at ``url`` to the latest schema: a copy of a migrated template when
    it is still empty, a normal ``migrate`` when it already holds a schema (a restart)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = Path(parsed.database or "")
        if target.exists() and target.stat().st_size > 0:
            migrate(url)
            return
        with sqlite3.connect(_sqlite_template()) as source, sqlite3.connect(target) as copy:
            source.backup(copy)  # consistent even with the template in WAL mode
        return
    dsn = parsed.set(drivername="postgresql", database=parsed.database)
    with psycopg.connect(dsn.render_as_string(hide_password=False), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    if tables is None or tables[0] != 0:
        migrate(url)
        return
    admin = make_url(postgres_admin_url()).set(drivername="postgresql")
    template = _postgres_template()
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{template}"')


def _sqlite_template() -> str:
    with _templates_lock:
        if "sqlite" not in _templates:
            folder = Path(tempfile.mkdtemp(prefix="guichet-schema-"))
            path = folder / "template.sqlite3"
            migrate(f"sqlite:///{path}")
            _templates["sqlite"] = str(path)
        return _templates["sqlite"]


def _postgres_template() -> str:
    with _templates_lock:
        if "postgresql" not in _templates:
            admin = make_url(postgres_admin_url())
            name = f"guichet_schema_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            atexit.register(_drop_postgres, dsn, name)
            migrate(admin.set(database=name).render_as_string(hide_password=False))
            _templates["postgresql"] = name
        return _templates["postgresql"]


def _drop_postgres(dsn: str, name: str) -> None:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # the server is going away with the run: nothing to clean
