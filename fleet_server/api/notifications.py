"""``/api/v1/notifications``: who is told about alerts (e-mail recipients and webhooks),
and the delivery log. Administrators only: a bearer token (``guichet fleet create-api-token``)
or the dashboard's session with its CSRF token in ``X-CSRF-Token`` for changes. Every
change is in the audit log, as from the page."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.models import NotificationTarget
from fleet_server.mqtt.alert_rules import AlertKind
from fleet_server.mqtt.notify import targets
from fleet_server.security import audit
from fleet_server.web.deps import ApiAdmin, Db

logger = logging.getLogger(__name__)

router = APIRouter(prefix=f"{API_PREFIX}/notifications", tags=["notifications"])


MAX_ID = 2**31 - 1  # an INTEGER column's largest value (SQLite would overflow, PostgreSQL refuse)
TargetId = Annotated[int, Path(ge=1, le=MAX_ID)]

ERRORS = {
    404: "Destinataire inconnu.",
    422: "Requête invalide (adresse, site, type d'alerte, heures calmes…).",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(ERRORS, *codes)


class TargetIn(BaseModel):
    """A recipient to add. ``site`` empty: every site; ``kinds`` empty: every alert kind."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "webhook"]
    address: str = Field(max_length=targets.MAX_ADDRESS, description="courriel ou https://…")
    label: str = Field(default="", max_length=targets.MAX_LABEL)
    site: str = Field(default="", max_length=128)
    kinds: list[AlertKind] = Field(default_factory=list)
    quiet_start: str = Field(default="", max_length=5, description="HH:MM, heure de Paris")
    quiet_end: str = Field(default="", max_length=5)
    digest: bool = False
    summary: bool = Field(
        default=False,
        description="Courriel : un résumé chaque matin (guichets hors service, alertes "
        "ouvertes, appels de la veille), à GUICHET_NOTIFY_SUMMARY_HOUR, heure de Paris.",
    )


class TargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    address: str
    label: str
    site: str
    kinds: list[str]
    quiet_start: str | None
    quiet_end: str | None
    digest: bool
    summary: bool
    active: bool
    created_at: datetime


class TargetCreated(TargetOut):
    secret: str | None = Field(
        description="Webhook : la clé HMAC de la signature, donnée cette fois seulement."
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    target_id: int
    alert_id: int
    event: str
    at: datetime
    device_id: str
    device_name: str
    site: str
    kind: str
    detail: str
    status: str
    held: bool
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None


@router.get(
    "/targets",
    response_model=list[TargetOut],
    summary="Destinataires des alertes",
    responses=_errors(401, 403),
)
def list_targets(db: Db, _user: ApiAdmin) -> list[TargetOut]:
    return [TargetOut.model_validate(t) for t in targets.all_targets(db)]


@router.post(
    "/targets",
    response_model=TargetCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Ajouter un destinataire",
    description="Un courriel ou un webhook, pour un site (ou tous) et des types d'alerte (ou "
    "tous). La clé de signature d'un webhook n'est donnée que dans cette réponse.",
    responses=_errors(400, 401, 403, 422),
)
def create_target(body: TargetIn, db: Db, user: ApiAdmin) -> TargetCreated:
    spec = targets.TargetSpec(**body.model_dump())
    try:
        target = targets.create(db, spec)
    except targets.TargetError as exc:
        db.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _sentence(exc)) from None
    _audit(db, user.username, user.user_id, "notification.target_create", target)
    db.commit()
    return TargetCreated(**TargetOut.model_validate(target).model_dump(), secret=target.secret)


@router.delete(
    "/targets/{target_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Retirer un destinataire",
    description="Le destinataire et son journal d'envoi sont supprimés.",
    responses=_errors(401, 403, 404, 422),
)
def delete_target(target_id: TargetId, db: Db, user: ApiAdmin) -> Response:
    try:
        target = targets.delete(db, target_id)
    except targets.TargetNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Destinataire inconnu.") from None
    _audit(db, user.username, user.user_id, "notification.target_delete", target)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/deliveries",
    response_model=list[DeliveryOut],
    summary="Journal des envois",
    description="Les derniers envois, les plus récents d'abord : état, tentatives, dernière "
    "erreur, prochain essai.",
    responses=_errors(401, 403, 404, 422),
)
def list_deliveries(
    db: Db,
    _user: ApiAdmin,
    target_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = targets.LOG_ROWS,
) -> list[DeliveryOut]:
    if target_id is not None and db.get(NotificationTarget, target_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Destinataire inconnu.")
    rows = targets.recent_deliveries(db, limit=limit, target_id=target_id)
    return [DeliveryOut.model_validate(d) for d in rows]


def _audit(db: Db, actor: str, actor_id: int | None, action: str, t: NotificationTarget) -> None:
    name = targets.audit_name(t)
    audit.record(db, actor, action, name, actor_user_id=actor_id, **targets.audit_detail(t))


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
