"""A NUL character (U+0000) in a request: PostgreSQL's text cannot hold it, so a request
carrying one is refused before it reaches a query — by the API (422, ``api/guards.py``) and
by the pages (400, ``web/deps.py:nul_guard``)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

NUL = "\x00"
JSON_NUL = b"\\u0000"  # how JSON writes it inside a string
MESSAGE = "Caractère nul refusé dans la requête."


def in_address(conn: HTTPConnection) -> bool:
    """In the path or in a query parameter's name or value."""
    query = conn.query_params.multi_items()
    return NUL in conn.url.path or any(NUL in k or NUL in v for k, v in query)


def in_body(body: bytes) -> bool:
    """Raw, or written as JSON's ``\\u0000``."""
    return b"\x00" in body or JSON_NUL in body.lower()


def in_form(items: list[tuple[str, object]]) -> bool:
    """In a form field's name or text value (an uploaded file's bytes are not text)."""
    return any(NUL in k or (isinstance(v, str) and NUL in v) for k, v in items)
