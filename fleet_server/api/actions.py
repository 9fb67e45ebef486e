"""Remote support's actions in the JSON API (administrators; what a counter's page and the
fleet table do): send one to a counter, to a selection or to a site, and follow it.

``POST`` answers 202 with the action (``state``: ``pending``, then ``done``, ``failed`` or
``timeout`` on ``GET``), or the refusal's status — 404 unknown counter, 409 offline or in a
call, 503 broker not connected — with its French reason in ``detail``. A session cookie needs
its CSRF token (``X-CSRF-Token``); a bearer token does not.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from fleet_server.api.fleet import API_PREFIX
from fleet_server.api.responses import error_responses
from fleet_server.models import Device
from fleet_server.mqtt import actions
from fleet_server.mqtt.actions import ActionRefusedError, ActionView
from fleet_server.web.deps import ApiAdmin, Ctx, Db
from fleet_server.web.device_actions import run_action, run_batch
from fleet_server.web.format import sentence
from guichet.actions import MAX_LOG_MINUTES, Action
from guichet.contract import utcnow

ERRORS = {
    400: "Aucun guichet choisi, ou corps de requête illisible (pas du JSON en UTF-8).",
    404: "Guichet ou action inconnus.",
    409: "Refusé : le guichet est hors ligne, ou en appel (redémarrage, autotest).",
    422: "Requête invalide (action inconnue, niveau hors de 0 à 100…).",
    503: "Le courtier MQTT n'est pas connecté : réessayer dans un instant.",
}
router = APIRouter(prefix=API_PREFIX, tags=["actions"], responses=error_responses(ERRORS, 401, 403))


class ActionIn(BaseModel):
    action: Action
    percent: Annotated[int | None, Field(ge=0, le=100)] = None  # set_volume, set_brightness
    minutes: Annotated[int | None, Field(ge=1, le=MAX_LOG_MINUTES)] = None  # fetch_logs


class BatchIn(BaseModel):
    action: Action
    percent: Annotated[int | None, Field(ge=0, le=100)] = None
    site: Annotated[str | None, Field(max_length=128)] = None
    device_ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=500)] = []


class ActionOut(BaseModel):
    request_id: uuid.UUID
    device_id: str
    action: str
    label: str
    percent: int | None
    sent_at: datetime
    actor: str | None
    state: str
    state_label: str
    detail: str | None
    checks: list[dict[str, Any]]
    # test_call: rtt_ms, up_kbps, down_kbps, up_loss_pct, down_loss_pct, measured_s
    # (docs/line-test.md); null until the server's answerer has measured.
    measurements: dict[str, float | None] | None = None


class BatchOut(BaseModel):
    sent: list[ActionOut]
    refused: dict[str, str]


def _out(view: ActionView) -> ActionOut:
    return ActionOut(**{name: getattr(view, name) for name in ActionOut.model_fields})


@router.post(
    "/devices/{device_id}/actions",
    response_model=ActionOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Agir sur un guichet",
    description="Redémarrer le logiciel (`restart`), le boîtier (`reboot`), lancer l'autotest "
    "(`selftest`), rafraîchir la configuration (`refresh_config`), régler le volume "
    "(`set_volume`) ou la luminosité (`set_brightness`, avec `percent` de 0 à 100), voir "
    "l'écran (`screenshot`), récupérer les journaux (`fetch_logs`, avec `minutes`), passer "
    "un appel de test (`test_call` : le serveur répond et mesure la ligne, résultat dans "
    "`measurements`). Refusé (409) si le guichet est hors ligne ou, pour le redémarrage, "
    "l'autotest, la capture d'écran et l'appel de test, en appel.",
    responses=error_responses(ERRORS, 400, 404, 409, 422, 503),
)
async def post_action(device_id: str, body: ActionIn, ctx: Ctx, user: ApiAdmin) -> ActionOut:
    try:
        return _out(
            await run_action(
                ctx, user, device_id, body.action, percent=body.percent, minutes=body.minutes
            )
        )
    except ActionRefusedError as exc:
        raise HTTPException(exc.status, sentence(str(exc))) from None


@router.get(
    "/devices/{device_id}/actions",
    response_model=list[ActionOut],
    summary="Dernières actions sur un guichet",
    responses=error_responses(ERRORS, 404),
)
def list_actions(device_id: str, db: Db, _user: ApiAdmin) -> list[ActionOut]:
    if db.get(Device, device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu.")
    return [_out(v) for v in actions.recent_actions(db, device_id, utcnow())]


@router.get(
    "/devices/{device_id}/actions/{action_id}",
    response_model=ActionOut,
    summary="Où en est une action",
    responses=error_responses(ERRORS, 404, 422),
)
def get_action(device_id: str, action_id: uuid.UUID, db: Db, _user: ApiAdmin) -> ActionOut:
    """``action_id``: the ``request_id`` the action was sent with."""
    found = actions.one_action(db, device_id, action_id, utcnow())
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Action inconnue pour ce guichet.")
    return _out(found)


@router.post(
    "/actions",
    response_model=BatchOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Agir sur plusieurs guichets ou tout un site",
    description="`device_ids`, `site`, ou les deux (les guichets nommés qui sont sur ce site). "
    "Chaque guichet est vérifié seul ; `refused` dit pourquoi pour les autres.",
    responses=error_responses(ERRORS, 400, 422),
)
async def post_batch(body: BatchIn, ctx: Ctx, user: ApiAdmin) -> BatchOut:
    if body.site is None and not body.device_ids:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Aucun guichet choisi.")
    outcome = await run_batch(
        ctx, user, body.action, site=body.site, device_ids=body.device_ids, percent=body.percent
    )
    return BatchOut(sent=[_out(v) for v in outcome.sent], refused=outcome.refused)
