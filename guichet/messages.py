"""Parsing a JSON message against a pydantic type, shared by the WebSocket signalling
(``guichet.signalling``) and the call's documents channel (``guichet.documents``): a size
bound first, then one short error naming the first field at fault."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from guichet.errors import GuichetError

T = TypeVar("T")


def first_error(exc: ValidationError, *, top: str) -> tuple[str, str]:
    """(where, message) of the first error: the dotted field path (``top`` for the whole
    document) and pydantic's message."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]) or top, first["msg"]


def parse_json(
    adapter: TypeAdapter[T],
    raw: str | bytes,
    *,
    max_bytes: int,
    error: Callable[[str], GuichetError],
) -> T:
    """Validate ``raw``; raise ``error(reason)`` (the caller's contract error), one short line."""
    if len(raw) > max_bytes:
        raise error(f"message too large ({len(raw)} bytes)")
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        where, message = first_error(exc, top="message")
        raise error(f"invalid message: {where}: {message}") from None
