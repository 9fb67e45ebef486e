"""What an API route declares it may answer besides success: one error model, and the
French description of each code for that route's area (the OpenAPI document lists them).

A 422 is either FastAPI's list of the fields in fault (a request that does not fit the
route's schema) or one sentence (a value the domain refused): ``InvalidOut`` says both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

AUTH_ERRORS: Mapping[int, str] = {
    400: "Corps de requête illisible (pas du JSON en UTF-8).",
    401: "Jeton absent ou invalide.",
    403: "Réservé aux administrateurs (ou formulaire sans jeton CSRF).",
    422: "Requête invalide.",
}


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    """One field in fault, as FastAPI reports it (``input``, ``ctx`` may follow)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class InvalidOut(BaseModel):
    detail: str | list[FieldError]


def error_responses(words: Mapping[int, str], *codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``codes``, described by ``words`` (the 401 and
    403 of every admin route included)."""
    said = {**AUTH_ERRORS, **words}
    return {
        code: {"model": InvalidOut if code == 422 else ErrorOut, "description": said[code]}
        for code in codes
    }
