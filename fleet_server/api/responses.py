"""What an API route declares it may answer besides success: one error model, and the
French description of each code for that route's area (the OpenAPI document lists them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

AUTH_ERRORS: Mapping[int, str] = {
    401: "Jeton absent ou invalide.",
    403: "Réservé aux administrateurs (ou formulaire sans jeton CSRF).",
}


class ErrorOut(BaseModel):
    detail: str


def error_responses(words: Mapping[int, str], *codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``codes``, described by ``words`` (the 401 and
    403 of every admin route included)."""
    said = {**AUTH_ERRORS, **words}
    return {code: {"model": ErrorOut, "description": said[code]} for code in codes}
