"""Bulk statements: one per table and batch, whatever the number of rows.

PostgreSQL: each column travels as one array parameter that the statement reads back with
``unnest`` — ``INSERT … SELECT``, ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (which rows
were new: the dedup of events and answers) and ``UPDATE … FROM`` — so a batch costs one round
trip per table, the server runs one statement rather than one per row, and the statement's
text does not change with the number of rows: psycopg prepares it once per connection
instead of parsing a new ``VALUES (…), (…)`` list on every batch (what SQLAlchemy's
executemany sent: issue 16, item 3).

SQLite (in-process, no round trips): ``executemany`` of one short statement, and for the
dedup a multi-row ``INSERT … RETURNING`` under SQLite's parameter limit.

Values go through the columns' own SQLAlchemy bind processors (``UtcDateTime``, ``JSON``,
``Uuid``…), so the rows stored are the ones the ORM would store; only SQLAlchemy's per-row
parameter bookkeeping is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

import psycopg
from psycopg.types.json import Json
from sqlalchemy import JSON, Column, ColumnElement, Float, Table, any_, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError

SQLITE_MAX_PARAMETERS = 32_700  # per statement: SQLite ≥ 3.32 allows 32,766 (SQLAlchemy's figure)

Row = Mapping[str, Any]
Convert = Callable[[Any], Any]


class JsonText(str):
    """A JSON column's value already serialised (pydantic's ``model_dump_json`` takes less than
    half the time of ``model_dump`` then ``json.dumps``): stored as it is."""

    __slots__ = ()


@dataclass(slots=True)
class Inserted:
    """What an ``insert_new`` inserted: its ``key`` values, as given, once the writes ran."""

    keys: set[Any] = field(default_factory=set)
    given: dict[Any, Any] = field(default_factory=dict)  # bound key value → as given


@dataclass(slots=True)
class _Statement:
    sql: str
    params: Any  # one tuple, or a list of them (executemany)
    inserted: Inserted | None = None  # INSERT … RETURNING key


class Writes:
    """A batch's INSERTs and UPDATEs, one statement per table, sent together by :meth:`run`.

    On PostgreSQL they go in one psycopg pipeline: one round trip for them all, where each
    statement was one (each costs the writer thread a wait for the server and then for the
    GIL, which paho's network thread holds while messages pour in). On SQLite they run one
    after the other (in-process: no round trips).
    """

    def __init__(self, session: Session) -> None:
        self._connection = session.connection()
        self._dialect = self._connection.dialect
        self._postgresql = _is_postgresql(self._connection)
        self._statements: list[_Statement] = []

    def append(self, table: Table, rows: Sequence[Row]) -> None:
        """INSERT every row (all with the same keys: the columns written; no defaults added)."""
        if not rows:
            return
        columns = tuple(rows[0])
        values = _values(self._dialect, table, columns, rows)
        if self._postgresql:
            self._add(_pg_insert(table, columns, ""), tuple(values))
        else:
            self._add(_sqlite_insert(table, columns), list(zip(*values, strict=True)))

    def insert_new(self, table: Table, rows: Sequence[Row], key: str) -> Inserted:
        """INSERT … ON CONFLICT DO NOTHING; which ``key`` values were new, after :meth:`run`."""
        inserted = Inserted()
        if not rows:
            return inserted
        columns = tuple(rows[0])
        values = _values(self._dialect, table, columns, rows)
        bound = values[columns.index(key)]
        inserted.given = dict(zip(bound, (row[key] for row in rows), strict=True))
        if self._postgresql:
            returning = f" ON CONFLICT DO NOTHING RETURNING {_PG.identifier_preparer.quote(key)}"
            self._add(_pg_insert(table, columns, returning), tuple(values), inserted)
            return inserted
        records = list(zip(*values, strict=True))
        per_statement = SQLITE_MAX_PARAMETERS // len(columns)
        for start in range(0, len(records), per_statement):
            chunk = records[start : start + per_statement]
            flat = tuple(value for record in chunk for value in record)
            self._add(_sqlite_insert(table, columns, len(chunk), key), flat, inserted)
        return inserted

    def update(self, table: Table, rows: Sequence[Row], key: str = "id") -> None:
        """UPDATE each row's columns where ``key`` matches (all rows with the same keys)."""
        if not rows:
            return
        columns = (key, *(name for name in rows[0] if name != key))
        values = _values(self._dialect, table, columns, rows)
        if self._postgresql:
            self._add(_pg_update(table, columns), tuple(values))
        else:
            records = [(*record[1:], record[0]) for record in zip(*values, strict=True)]
            self._add(_sqlite_update(table, columns), records)

    def run(self) -> None:
        """Send every statement, in the order given; fills each ``Inserted``."""
        if self._postgresql:
            self._run_pipeline()
        else:
            for statement in self._statements:
                result = self._connection.exec_driver_sql(statement.sql, statement.params)
                if statement.inserted is not None:
                    _collect(statement.inserted, result.scalars().all())
        self._statements.clear()

    def _add(self, sql: str, params: Any, inserted: Inserted | None = None) -> None:
        self._statements.append(_Statement(sql, params, inserted))

    def _run_pipeline(self) -> None:
        raw = self._connection.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        cursors = []
        try:
            with raw.pipeline():
                for statement in self._statements:
                    cursor = raw.cursor()
                    cursor.execute(statement.sql, statement.params)
                    cursors.append(cursor)
            for statement, cursor in zip(self._statements, cursors, strict=True):
                if statement.inserted is not None:
                    _collect(statement.inserted, [row[0] for row in cursor.fetchall()])
        except psycopg.Error as exc:  # as SQLAlchemy would have raised it (the writer's retry)
            raise self._translate(exc) from exc
        finally:
            for cursor in cursors:
                cursor.close()

    def _translate(self, exc: psycopg.Error) -> DBAPIError:
        raw = self._connection.connection.dbapi_connection
        lost = self._dialect.is_disconnect(cast(Any, exc), raw, None)
        if lost:
            self._connection.invalidate(exc)
        error = DBAPIError.instance(
            None,
            None,
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=self._dialect,
        )
        assert isinstance(error, DBAPIError)  # it is one: a psycopg.Error was given
        return error


def _collect(inserted: Inserted, keys: Sequence[Any]) -> None:
    inserted.keys.update(inserted.given[key] for key in keys)


def plan_each(session: Session) -> None:
    """On PostgreSQL, plan this transaction's statements with their parameters' values.

    psycopg prepares a statement run five times, and PostgreSQL may then keep one generic
    plan for it, made without the values — and, on a fresh database, without statistics: it
    planned the batch's open alerts as a nested loop comparing every alert with every
    counter (40–150 ms per batch of 250 counters, growing with the fleet). Planned with the
    values, an array of counters is a hashed ``= ANY`` (about 1 ms); planning each statement
    costs a fraction of a millisecond."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def among(
    session: Session, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN (…)``; on PostgreSQL ``= ANY(array)``: one text whatever the count."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


# --- values -----------------------------------------------------------------------------


def _values(
    dialect: Dialect, table: Table, columns: tuple[str, ...], rows: Sequence[Row]
) -> list[list[Any]]:
    """One list per column, each value as the column's bind processor makes it."""
    out = []
    for name in columns:
        convert = _converter(dialect, table.c[name])
        if convert is None:
            out.append([row[name] for row in rows])
        else:
            out.append([None if row[name] is None else convert(row[name]) for row in rows])
    return out


def _converter(dialect: Dialect, column: Column[Any]) -> Convert | None:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(column.type, JSON) and process is not None:
        return _json_converter(dialect, process)
    if isinstance(column.type, Float) and dialect.name == "postgresql":
        # One array holds one type: an int among floats (a temperature of exactly 52)
        # must become a float, as PostgreSQL's driver would not mix them.
        return float if process is None else lambda value: process(float(value))
    return process


def _json_converter(dialect: Dialect, process: Convert) -> Convert:
    if dialect.name == "postgresql":  # psycopg's wrapper, so the array is one of json

        def convert(value: Any) -> Any:
            if isinstance(value, JsonText):
                return Json(value, dumps=str)
            return process(value)

    else:

        def convert(value: Any) -> Any:
            return value if isinstance(value, JsonText) else process(value)

    return convert


def _is_postgresql(connection: Connection) -> bool:
    name = connection.dialect.name
    if name not in ("postgresql", "sqlite"):  # pragma: no cover - the two supported databases
        raise FleetError(f"database {name} is not supported (PostgreSQL or SQLite)")
    return name == "postgresql"


# --- statements (cached: one text per table and set of columns) -------------------------
# Every name in them comes from our own table metadata, never from a message (hence S608).

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
_SQLITE = sqlite.dialect()


@cache
def _pg_insert(table: Table, columns: tuple[str, ...], tail: str) -> str:
    arrays = ", ".join(_pg_array(table, column) for column in columns)
    into = _names(_PG, table, columns)
    return f"INSERT INTO {into} SELECT * FROM unnest({arrays}){tail}"  # noqa: S608


@cache
def _pg_update(table: Table, columns: tuple[str, ...]) -> str:
    quote, name = _PG.identifier_preparer.quote, _PG.identifier_preparer.format_table(table)
    key = quote(columns[0])
    arrays = ", ".join(_pg_array(table, column) for column in columns)
    sets = ", ".join(f"{quote(column)} = v.{quote(column)}" for column in columns[1:])
    alias = ", ".join(quote(column) for column in columns)
    source = f"unnest({arrays}) AS v({alias})"
    return f"UPDATE {name} SET {sets} FROM {source} WHERE {name}.{key} = v.{key}"  # noqa: S608


def _pg_array(table: Table, column: str) -> str:
    # %b: binary parameters (a JSON text in a text-format array is escaped character by
    # character in Python: 7 times slower for a batch's telemetry).
    return f"%b::{table.c[column].type.compile(dialect=_PG)}[]"


@cache
def _sqlite_insert(table: Table, columns: tuple[str, ...], rows: int = 1, key: str = "") -> str:
    record = f"({', '.join('?' for _ in columns)})"
    tail = f" ON CONFLICT DO NOTHING RETURNING {_SQLITE.identifier_preparer.quote(key)}"
    values = ", ".join([record] * rows)
    return f"INSERT INTO {_names(_SQLITE, table, columns)} VALUES {values}{tail if key else ''}"  # noqa: S608


@cache
def _sqlite_update(table: Table, columns: tuple[str, ...]) -> str:
    quote, name = _SQLITE.identifier_preparer.quote, _SQLITE.identifier_preparer.format_table(table)
    sets = ", ".join(f"{quote(column)} = ?" for column in columns[1:])
    return f"UPDATE {name} SET {sets} WHERE {quote(columns[0])} = ?"  # noqa: S608


def _names(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    """``table (column, …)``, quoted as the dialect needs."""
    quote = dialect.identifier_preparer.quote
    return f"{dialect.identifier_preparer.format_table(table)} ({', '.join(map(quote, columns))})"
