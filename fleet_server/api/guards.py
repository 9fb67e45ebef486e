"""Checks every ``/api/v1`` request passes before its route (``app.py`` adds them to each
API router): a NUL character (U+0000) anywhere in the path, the query or a body is refused
as an invalid request (422). PostgreSQL's text cannot hold it: let through, it would reach
the database and come back as a server error."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request, status

from fleet_server.security import nul

logger = logging.getLogger(__name__)


async def reject_nul(request: Request) -> None:
    found = nul.in_address(request)
    if not found and request.method in ("POST", "PUT", "PATCH"):
        found = nul.in_body(await request.body())  # cached: the route reads the same bytes
    if found:
        logger.info("API request refused: NUL character", extra={"path": request.url.path})
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, nul.MESSAGE)
