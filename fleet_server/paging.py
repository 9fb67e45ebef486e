"""Keyset pagination, shared by every list that grows with the fleet or with time: the fleet
table, the alerts, the call log and the audit log.

A list is sorted by a few columns that end with a unique one (the row's id), all ascending or
all descending: its :class:`Ordering`. A page's cursor is the sort key of its first or last
row, encoded for a URL; ``after=`` gives the rows that follow it, ``before=`` the rows that
precede it (read in reverse order, then turned round). No OFFSET: with an index on the sort
columns, page 200 costs what page 1 costs, and a row added meanwhile neither shifts nor
repeats a page.

Counting is the other cost that grows. A list bounded by the fleet (counters, open alerts) is
counted: its total means something ("12 counters offline"). A list that grows with time (calls,
cleared alerts, the audit log) is not (``counted=False``): with a few filters combined, a count
reads every row of a year that matches the most selective one, to print a number nobody
needs there (the statistics page has the call figures).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, Row, Select, func, literal, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeDecorator

from guichet.schedule import PARIS

logger = logging.getLogger(__name__)

T = TypeVar("T")
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

DEFAULT_PAGE_SIZE = 50  # rows per page unless a caller asks otherwise
MAX_PAGE_SIZE = 200  # the most one page may hold (the API's ``limit``)
MAX_SEARCH_LENGTH = 64  # characters of a text search kept


class BadCursorError(ValueError):
    """A pagination cursor that this server did not make for this list."""


class Ordering:
    """A list's sort: columns ending with a unique one, all descending or all ascending."""

    def __init__(self, *columns: InstrumentedAttribute[Any], descending: bool = False) -> None:
        if not columns:
            raise ValueError("an ordering needs at least one column")
        self.columns = columns
        self.descending = descending

    def order_by(self, *, reverse: bool = False) -> list[ColumnElement[Any]]:
        down = self.descending != reverse
        return [c.desc() if down else c.asc() for c in self.columns]

    def beyond(self, key: Sequence[object], *, reverse: bool = False) -> ColumnElement[bool]:
        """The rows after ``key`` in this order (before it when ``reverse``): one row-value
        comparison, which PostgreSQL and SQLite both match against an index on the columns."""
        left = tuple_(*self.columns)
        right = tuple_(*(literal(v, c.type) for v, c in zip(key, self.columns, strict=True)))
        return left < right if self.descending != reverse else left > right

    def encode(self, key: Sequence[object]) -> str:
        values = [_plain(v) for v in key]
        raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[object, ...]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise BadCursorError(cursor) from exc
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise BadCursorError(cursor)
        return tuple(_typed(v, c, cursor) for v, c in zip(values, self.columns, strict=True))


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return value.hex
    return value


def _typed(value: object, column: InstrumentedAttribute[Any], cursor: str) -> object:
    """A cursor's value as the column's Python type, or BadCursorError."""
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):  # e.g. UtcDateTime, whose python_type is object
        sql_type = sql_type.impl_instance
    kind = sql_type.python_type
    if kind in (int, str) and type(value) is kind:  # not a bool for an int
        return value
    try:
        if kind is datetime and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        elif kind is uuid.UUID and isinstance(value, str):
            return uuid.UUID(hex=value)
    except ValueError as exc:
        raise BadCursorError(cursor) from exc
    raise BadCursorError(cursor)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with how many rows the whole (filtered) list holds."""

    items: list[T]
    total: int | None  # None: not counted (a list that grows with time)
    next_cursor: str | None
    prev_cursor: str | None


def keyset_page(
    session: Session,
    stmt: AnySelect,
    ordering: Ordering,
    item: Callable[[AnyRow], T],
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    counted: bool = True,
    count_stmt: AnySelect | None = None,
) -> Page[T]:
    """The page of ``stmt`` (a filtered SELECT, unordered) after or before a cursor, each row
    turned into an item by ``item``, and the number of rows ``stmt`` selects if ``counted``
    (``count_stmt``: the same rows, cheaper to count — without a join the count does not
    need). Raises BadCursorError for a cursor it did not make."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    keyed = stmt.add_columns(*ordering.columns)  # each row ends with its own sort key
    width = len(ordering.columns)
    if before is not None:
        keyed = keyed.where(ordering.beyond(ordering.decode(before), reverse=True))
        rows = session.execute(keyed.order_by(*ordering.order_by(reverse=True)).limit(limit + 1))
        fetched = list(rows)
        page_rows = list(reversed(fetched[:limit]))
        has_prev, has_next = len(fetched) > limit, True
    else:
        if after is not None:
            keyed = keyed.where(ordering.beyond(ordering.decode(after)))
        rows = session.execute(keyed.order_by(*ordering.order_by()).limit(limit + 1))
        fetched = list(rows)
        page_rows = fetched[:limit]
        has_prev, has_next = after is not None, len(fetched) > limit
    if not counted:
        total = None
    elif after is None and before is None and not has_next:
        total = len(page_rows)  # the whole list is this one page: nothing more to count
    else:
        total = count(session, stmt if count_stmt is None else count_stmt)
    return Page(
        items=[item(r) for r in page_rows],
        total=total,
        next_cursor=ordering.encode(page_rows[-1][-width:]) if has_next and page_rows else None,
        prev_cursor=ordering.encode(page_rows[0][-width:]) if has_prev and page_rows else None,
    )


def count(session: Session, stmt: AnySelect) -> int:
    """How many rows ``stmt`` selects."""
    inner = stmt.with_only_columns(literal(1), maintain_column_froms=True).order_by(None)
    return session.scalar(select(func.count()).select_from(inner.subquery())) or 0


def contains(text: str, *columns: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """Any of the columns contains ``text`` (case-insensitive; ``%`` and ``_`` taken
    literally). A scan of the rows the other filters leave: keep it to bounded tables or to
    a page's worth of an indexed order."""
    pattern = "%" + _escape_like(text.strip()[:MAX_SEARCH_LENGTH]) + "%"
    return or_(*(c.ilike(pattern, escape="\\") for c in columns))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def until_day(
    column: InstrumentedAttribute[datetime], day: date, tz: tzinfo = PARIS
) -> ColumnElement[bool]:
    """The rows of ``day`` or before, the day as a page shows times (Paris, unless it shows
    them in UTC): a jump back in a list sorted newest first."""
    if day >= date.max:  # the last day there is: everything (its next day would overflow)
        return column.is_not(None)
    return column < datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
