"""``/api/v1/alert-thresholds``: each site's own delay before a counter offline or silent
raises its alert (a site without one uses ``GUICHET_ALERT_OFFLINE_AFTER_MIN``).
Administrators only: a bearer token or the dashboard's session with its CSRF token in
``X-CSRF-Token`` for changes. Every change is in the audit log, as from the page."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.mqtt import thresholds
from fleet_server.security import audit
from fleet_server.web.deps import ApiAdmin, Db, app_context

logger = logging.getLogger(__name__)

router = APIRouter(prefix=f"{API_PREFIX}/alert-thresholds", tags=["notifications"])


ERRORS = {
    404: "Ce site n'a pas de délai propre.",
    422: "Requête invalide (site inconnu, délai hors des bornes…).",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(ERRORS, *codes)


class ThresholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offline_after_min: int = Field(
        ge=thresholds.MIN_MINUTES,
        le=thresholds.MAX_MINUTES,
        description="Minutes hors ligne ou muet avant l'alerte, pour les guichets de ce site.",
    )


class ThresholdOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    site: str
    offline_after_min: int
    updated_at: datetime


class ThresholdsOut(BaseModel):
    default_offline_after_min: float = Field(
        description="Le délai commun (GUICHET_ALERT_OFFLINE_AFTER_MIN), pour les autres sites."
    )
    sites: list[ThresholdOut]


@router.get(
    "",
    response_model=ThresholdsOut,
    summary="Délais d'alerte hors ligne par site",
    responses=_errors(401, 403),
)
def list_thresholds(request: Request, db: Db, _user: ApiAdmin) -> ThresholdsOut:
    rows = [ThresholdOut.model_validate(t) for t in thresholds.all_thresholds(db)]
    default = app_context(request).settings.alert_offline_after_min
    return ThresholdsOut(default_offline_after_min=default, sites=rows)


@router.put(
    "/{site:path}",
    response_model=ThresholdOut,
    summary="Régler le délai d'un site",
    description="Le site doit être connu (guichets en service, jetons d'inscription valides).",
    # 404: no route matches a site with a line break ({site:path} is one line)
    responses=error_responses({404: "Adresse inconnue (un site sur plusieurs lignes)."}, 404)
    | _errors(400, 401, 403, 422),
)
def set_threshold(site: str, body: ThresholdIn, db: Db, user: ApiAdmin) -> ThresholdOut:
    try:
        row, before = thresholds.set_threshold(db, site, body.offline_after_min)
    except thresholds.ThresholdError as exc:
        db.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _sentence(exc)) from None
    audit.record(
        db, user.username, "site.threshold_set", row.site, actor_user_id=user.user_id,
        offline_after_min=row.offline_after_min, previous_offline_after_min=before,
    )  # fmt: skip
    db.commit()
    return ThresholdOut.model_validate(row)


@router.delete(
    "/{site:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revenir au délai commun",
    responses=_errors(401, 403, 404, 422),
)
def remove_threshold(site: str, db: Db, user: ApiAdmin) -> Response:
    try:
        before = thresholds.remove(db, site)
    except thresholds.ThresholdNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Ce site n'a pas de délai propre.") from None
    audit.record(
        db, user.username, "site.threshold_remove", site, actor_user_id=user.user_id,
        previous_offline_after_min=before,
    )  # fmt: skip
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
