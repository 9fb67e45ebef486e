"""What the paginated pages share (fleet table, alerts, call log, audit log): reading their
filters from the query string, the cursor, and the links to the pages before and after.

A page's filters are read leniently — a value the page does not offer is dropped, as if the
filter were not set — and only the cleaned ones go into its links. A cursor this server did
not make (an old bookmark, a hand-edited URL) shows the first page rather than an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from urllib.parse import urlencode

from fastapi import Request

from fleet_server.paging import MAX_SEARCH_LENGTH, BadCursorError, Page

logger = logging.getLogger(__name__)

T = TypeVar("T")


def choice(request: Request, name: str, allowed: Collection[str]) -> str:
    """The parameter if it is one of ``allowed``, else ``""`` (no filter)."""
    value = request.query_params.get(name, "")
    return value if value in allowed else ""


def text(request: Request, name: str, max_length: int = MAX_SEARCH_LENGTH) -> str:
    return request.query_params.get(name, "").strip()[:max_length]


def day(request: Request, name: str) -> date | None:
    """A ``YYYY-MM-DD`` parameter (an ``<input type="date">``), or None."""
    try:
        return date.fromisoformat(request.query_params.get(name, ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class Paged:
    """A page's links to the pages before and after it, and its own query string (filters
    and cursor: what a live refresh of the same page asks for)."""

    prev_url: str | None
    next_url: str | None
    query: str


def fetch(
    request: Request,
    path: str,
    filters: Mapping[str, str],
    get: Callable[[str | None, str | None], Page[T]],
) -> tuple[Page[T], Paged]:
    """The page the query string's cursor asks for (``get(after, before)``) and its links,
    which keep the cleaned ``filters`` (empty values dropped)."""
    kept = {k: v for k, v in filters.items() if v}
    after = request.query_params.get("after") or None
    before = request.query_params.get("before") or None
    try:
        page = get(after, before)
    except BadCursorError:
        logger.info("unknown page cursor: first page shown", extra={"path": path})
        page, after, before = get(None, None), None, None
    position = {k: v for k, v in (("after", after), ("before", before)) if v}

    def link(**cursor: str) -> str:
        return path + "?" + urlencode({**kept, **cursor})

    return page, Paged(
        prev_url=link(before=page.prev_cursor) if page.prev_cursor else None,
        next_url=link(after=page.next_cursor) if page.next_cursor else None,
        query=urlencode({**kept, **position}),
    )
