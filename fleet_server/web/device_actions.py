"""Remote support's actions from a counter's page and the fleet table (administrators):
restart the software, reboot the box, run the self-test, refresh the configuration.

A form posts the action; with script (``static/actions.js``) it is sent with ``Accept:
application/json`` and answered in JSON (202, or the refusal's status and French reason),
then the page's list of actions (``GET /devices/{id}/actions``, a fragment) is fetched again
every second while one is pending: pending → done or failed, with the counter's reason, or
unanswered past its deadline, without a reload. Without script the form answers by
post/redirect/get with the same message. ``run_action`` and ``run_batch`` are shared with
the API (``fleet_server/api/actions.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from fleet_server.models import Device
from fleet_server.mqtt import actions, uploads
from fleet_server.mqtt.actions import ActionRefusedError, ActionView
from fleet_server.mqtt.config_push import ConfigPusher, latest_questionnaire
from fleet_server.mqtt.publisher import CommandNotSentError
from fleet_server.security.auth import Principal
from fleet_server.web.deps import AdminUser, AppContext, Ctx, Db, redirect_to, render
from fleet_server.web.format import sentence
from guichet import contract
from guichet.actions import ACTION_LABELS, LEVELS, MAX_LOG_MINUTES, Action
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

BROKER_DOWN = "le courtier MQTT n'est pas connecté : réessayez dans un instant"


def _config_builder(ctx: AppContext) -> actions.BuildConfig:
    pusher = ctx.config_pusher or ConfigPusher(ctx)

    def build(session: Session, device_id: str) -> contract.DeviceConfig | None:
        return pusher.build(session, device_id, utcnow(), latest_questionnaire(session))

    return build


async def run_action(
    ctx: AppContext,
    user: Principal,
    device_id: str,
    action: Action,
    before_publish: Callable[[], object] | None = None,
    percent: int | None = None,
    minutes: int | None = None,
) -> ActionView:
    """Send one action (checks, row, audit; committed, then published); raises
    ``ActionRefusedError``. ``before_publish`` runs once it is committed, before it leaves
    (the page renders its list then: the action shows pending, whatever the counter's pace)."""
    ingest = ctx.ingest
    if ingest is None:
        raise ActionRefusedError(BROKER_DOWN, status.HTTP_503_SERVICE_UNAVAILABLE)
    build = _config_builder(ctx)

    def prepare() -> actions.Prepared:
        with ctx.sessions.begin() as session:
            return actions.prepare_action(
                session, device_id, action, actor=user.username,
                actor_user_id=user.user_id, in_call=ctx.calls.in_call, build_config=build,
                percent=percent, minutes=minutes,
            )  # fmt: skip

    def withdraw(prepared: actions.Prepared) -> None:
        with ctx.sessions.begin() as session:
            actions.withdraw(session, prepared)

    prepared = await asyncio.to_thread(prepare)
    if before_publish is not None:
        await asyncio.to_thread(before_publish)
    try:
        actions.publish(ingest, prepared)
    except CommandNotSentError:
        await asyncio.to_thread(withdraw, prepared)
        raise ActionRefusedError(BROKER_DOWN, status.HTTP_503_SERVICE_UNAVAILABLE) from None
    logger.info(
        "action sent",
        extra={"device_id": device_id, "action": action.value, "by": user.username},
    )
    return prepared.view


@dataclass(frozen=True)
class BatchOutcome:
    sent: list[ActionView]
    refused: dict[str, str]  # device id → French reason


async def run_batch(
    ctx: AppContext,
    user: Principal,
    action: Action,
    *,
    site: str | None,
    device_ids: list[str],
    percent: int | None = None,
) -> BatchOutcome:
    """One action on a selection of counters or a whole site: each counter is checked on its
    own; ids that are unknown, withdrawn or not on ``site`` are refused, never sent."""

    def targets() -> tuple[list[str], list[str]]:
        with ctx.sessions() as session:
            return actions.batch_targets(session, site=site, device_ids=device_ids)

    found, unknown = await asyncio.to_thread(targets)
    refused = dict.fromkeys(unknown, "guichet inconnu, retiré ou d'un autre site")
    sent: list[ActionView] = []
    for device_id in found:
        try:
            sent.append(await run_action(ctx, user, device_id, action, percent=percent))
        except ActionRefusedError as exc:
            refused[device_id] = str(exc)
    return BatchOutcome(sent, refused)


def _action(value: str) -> Action:
    try:
        return Action(value)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Action inconnue.") from None


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _page_of(device_id: str) -> str:
    return f"/devices/{device_id}"


@router.post("/devices/{device_id}/actions")
async def device_action(
    request: Request,
    device_id: str,
    ctx: Ctx,
    user: AdminUser,
    action: Annotated[str, Form(max_length=32)],
    percent: Annotated[int | None, Form(ge=0, le=100)] = None,
    minutes: Annotated[int | None, Form(ge=1, le=MAX_LOG_MINUTES)] = None,
) -> Response:
    chosen = _action(action)
    label = ACTION_LABELS[chosen]
    listed: list[str] = []

    def render_list() -> None:
        with ctx.sessions() as session:
            listed.append(_list_html(request, session, device_id, user))

    try:
        sent = await run_action(ctx, user, device_id, chosen, render_list, percent, minutes)
    except ActionRefusedError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise HTTPException(exc.status, "Guichet inconnu.") from None
        message = f"« {label} » refusé : {exc}"
        if _wants_json(request):
            return JSONResponse({"error": sentence(message)}, status_code=exc.status)
        return redirect_to(request, _page_of(device_id) + "#actions", form="actions", error=message)
    notice = f"« {label} » envoyé au guichet"
    if _wants_json(request):
        body = {
            "request_id": str(sent.request_id),
            "state": sent.state,
            "message": sentence(notice),
        }
        return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)
    return redirect_to(request, _page_of(device_id) + "#actions", form="actions", notice=notice)


@router.get("/devices/{device_id}/actions", response_class=HTMLResponse)
def device_actions_list(request: Request, device_id: str, db: Db, user: AdminUser) -> Response:
    """The counter's latest actions, as a fragment the page swaps in while one is pending."""
    if db.get(Device, device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu")
    return HTMLResponse(_list_html(request, db, device_id, user))


def _list_html(request: Request, session: Session, device_id: str, user: Principal) -> str:
    listed = actions.recent_actions(session, device_id, utcnow())
    context = {
        "device_id": device_id,
        "actions": listed,
        "kept_files": uploads.kept_ids(session, [a.request_id for a in listed]),
    }
    return bytes(render(request, "_actions.html", context, principal=user).body).decode()


@router.post("/fleet/actions")
async def fleet_action(
    request: Request,
    ctx: Ctx,
    user: AdminUser,
    action: Annotated[str, Form(max_length=32)],
    site: Annotated[str, Form(max_length=128)] = "",
    device: Annotated[list[str] | None, Form(max_length=64)] = None,
    percent: Annotated[str, Form(max_length=8)] = "",  # empty unless a level is set
) -> Response:
    """One action on the counters ticked in the fleet table, or on a whole site."""
    chosen = _action(action)
    back = "/?" + urlencode({"site": site}) if site else "/"
    ids = list(dict.fromkeys(device or []))[: actions.MAX_BATCH]
    if not site and not ids:
        return redirect_to(request, back, form="actions", error="aucun guichet choisi")
    level = int(percent) if percent.strip().isdigit() else None
    if chosen in LEVELS and (level is None or level > 100):
        return redirect_to(request, back, form="actions", error="indiquez un niveau de 0 à 100 %")
    outcome = await run_batch(ctx, user, chosen, site=site or None, device_ids=ids, percent=level)
    label = ACTION_LABELS[chosen]
    parts = [f"« {label} » envoyé à {len(outcome.sent)} guichet(s)"]
    if outcome.refused:
        refused = " ; ".join(f"{d} : {why}" for d, why in sorted(outcome.refused.items()))
        parts.append(f"refusé pour {len(outcome.refused)} : {refused}")
    message = ", ".join(parts)
    if outcome.sent:
        return redirect_to(request, back, form="actions", notice=message)
    return redirect_to(request, back, form="actions", error=message)
