"""Checks every ``/api/v1`` request passes before its route (``app.py`` adds them to each
API router): a NUL character (U+0000) anywhere in the path, the query or a body is refused
as an invalid request (422). PostgreSQL's text cannot hold it: let through, it would reach
the database and come back as a server error."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request, status

logger = logging.getLogger(__name__)

NUL = "\x00"
JSON_NUL = b"\\u0000"  # how JSON writes it inside a string


async def reject_nul(request: Request) -> None:
    query = request.query_params.multi_items()
    found = NUL in request.url.path or any(NUL in k or NUL in v for k, v in query)
    if not found and request.method in ("POST", "PUT", "PATCH"):
        body = await request.body()  # cached: the route reads the same bytes
        found = b"\x00" in body or JSON_NUL in body.lower()
    if found:
        logger.info("API request refused: NUL character", extra={"path": request.url.path})
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "Caractère nul refusé dans la requête."
        )
