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
from functools import cache
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, Column, ColumnElement, Float, Table, any_, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from fleet_server.errors import FleetError

SQLITE_MAX_PARAMETERS = 32_700  # per statement: SQLite ≥ 3.32 allows 32,766 (SQLAlchemy's figure)

Row = Mapping[str, Any]
Convert = Callable[[Any], Any]


class JsonText(str):
    """A JSON column's value already serialised (pydantic's ``model_dump_json`` takes less than
    half the time of ``model_dump`` then ``json.dumps``): stored as it is."""

    __slots__ = ()


def append(session: Session, table: Table, rows: Sequence[Row]) -> None:
    """INSERT every row (all with the same keys: the columns written)."""
    if not rows:
        return
    connection, columns = session.connection(), list(rows[0])
    values = _values(connection.dialect, table, columns, rows)
    if _is_postgresql(connection):
        connection.exec_driver_sql(_pg_insert(table, tuple(columns), ""), tuple(values))
    else:
        connection.exec_driver_sql(
            _sqlite_insert(table, tuple(columns)), list(zip(*values, strict=True))
        )


def insert_new(session: Session, table: Table, rows: Sequence[Row], key: str) -> set[Any]:
    """INSERT … ON CONFLICT DO NOTHING; the ``key`` values (as given) of the rows inserted."""
    if not rows:
        return set()
    connection, columns = session.connection(), list(rows[0])
    values = _values(connection.dialect, table, columns, rows)
    given = dict(zip(values[columns.index(key)], (row[key] for row in rows), strict=True))
    if _is_postgresql(connection):
        sql = _pg_insert(
            table,
            tuple(columns),
            f" ON CONFLICT DO NOTHING RETURNING {_PG.identifier_preparer.quote(key)}",
        )
        inserted = connection.exec_driver_sql(sql, tuple(values)).scalars().all()
    else:
        records = list(zip(*values, strict=True))
        per_statement = SQLITE_MAX_PARAMETERS // len(columns)
        inserted = []
        for start in range(0, len(records), per_statement):
            chunk = records[start : start + per_statement]
            sql = _sqlite_insert(table, tuple(columns), len(chunk), key)
            flat = [value for record in chunk for value in record]
            inserted += connection.exec_driver_sql(sql, tuple(flat)).scalars().all()
    return {given[value] for value in inserted}


def update(session: Session, table: Table, rows: Sequence[Row], key: str = "id") -> None:
    """UPDATE each row's columns where ``key`` matches (all rows with the same keys)."""
    if not rows:
        return
    connection, columns = session.connection(), list(rows[0])
    columns.remove(key)
    columns.insert(0, key)
    values = _values(connection.dialect, table, columns, rows)
    if _is_postgresql(connection):
        connection.exec_driver_sql(_pg_update(table, tuple(columns)), tuple(values))
    else:
        records = [(*record[1:], record[0]) for record in zip(*values, strict=True)]
        connection.exec_driver_sql(_sqlite_update(table, tuple(columns)), records)


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
    dialect: Dialect, table: Table, columns: list[str], rows: Sequence[Row]
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
