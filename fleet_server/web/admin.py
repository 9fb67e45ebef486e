"""Administrators' call setup: services (``/admin/services``), and on a counter's page its
site and name, the service its button calls and a new call token (shown once)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from fleet_server.calls import admin as calls_admin
from fleet_server.calls.store import missed_today
from fleet_server.models import Device
from fleet_server.mqtt import config_push
from fleet_server.security import audit, sites
from fleet_server.web.deps import (
    AdminUser,
    AppContext,
    Ctx,
    Db,
    SubmittedForm,
    check_csrf,
    redirect_to,
    render,
)
from guichet.contract import utcnow

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@router.get("/admin/services", response_class=HTMLResponse)
def services_page(request: Request, db: Db, user: AdminUser) -> Response:
    now = utcnow()
    rows = [(s, missed_today(s.code, now)(db)) for s in calls_admin.services(db)]
    context = {"section": "services", "rows": rows}
    return render(request, "services.html", context, principal=user)


@router.post("/admin/services", response_class=HTMLResponse)
def create_service(
    request: Request,
    db: Db,
    user: AdminUser,
    typed: SubmittedForm,
    code: Annotated[str, Form(max_length=64)],
    label: Annotated[str, Form(max_length=128)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        created = calls_admin.create_service(db, code, label)
    except calls_admin.CallSetupError as exc:
        db.rollback()
        url = "/admin/services#nouveau-service"
        return redirect_to(request, url, form="service", error=str(exc), values=typed)
    audit.record(
        db, user.username, "service.create", created.code, actor_user_id=user.user_id,
        label=created.label,
    )  # fmt: skip
    db.commit()
    notice = f"Service « {created.label} » créé. Ses horaires se règlent sur la page Horaires."
    return redirect_to(
        request, "/admin/services", form="services", notice=notice, changed=created.code
    )


@router.post("/devices/{device_id}/service")
async def set_service(
    request: Request,
    device_id: str,
    ctx: Ctx,
    user: AdminUser,
    service: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    page = f"/devices/{device_id}#appels"

    def save() -> None:
        with ctx.sessions.begin() as session:
            calls_admin.set_device_service(session, device_id, service or None)
            audit.record(
                session, user.username, "device.service", device_id,
                actor_user_id=user.user_id, service=service or None,
            )  # fmt: skip

    try:
        await asyncio.to_thread(save)
    except calls_admin.CallSetupError as exc:
        _known_device(ctx, device_id)
        return redirect_to(request, page, form="service", error=str(exc))
    logger.info("service chosen", extra={"device_id": device_id, "by": user.username})
    await ctx.calls.send_welcome(device_id)  # the counter's idle screen follows at once
    config_push.request_push(ctx, [device_id])  # the fixed service is part of its schedule
    notice = (
        "Service fixe enregistré." if service else "Service fixe retiré : les horaires décident."
    )
    return redirect_to(request, page, form="service", notice=notice)


SPEECH_CHOICES = {"": None, "on": True, "off": False}  # the form's values
SPEECH_NOTICES = {
    None: "Lecture à voix haute : comme le réglage du guichet.",
    True: "Lecture à voix haute activée : chaque écran est lu.",
    False: "Lecture à voix haute désactivée.",
}


@router.post("/devices/{device_id}/speech")
async def set_speech(
    request: Request,
    device_id: str,
    ctx: Ctx,
    user: AdminUser,
    speech: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Whether the counter says every screen aloud (issue 15); sent in its retained config."""
    check_csrf(request, csrf_token)
    page = f"/devices/{device_id}#appels"
    if speech not in SPEECH_CHOICES:
        return redirect_to(request, page, form="speech", error="Choix inconnu.")
    chosen = SPEECH_CHOICES[speech]

    def save() -> None:
        with ctx.sessions.begin() as session:
            calls_admin.set_device_speech(session, device_id, chosen)
            audit.record(
                session, user.username, "device.speech", device_id,
                actor_user_id=user.user_id, speech=chosen,
            )  # fmt: skip

    try:
        await asyncio.to_thread(save)
    except calls_admin.CallSetupError:
        _known_device(ctx, device_id)
        raise
    config_push.request_push(ctx, [device_id])  # the counter follows its retained config
    return redirect_to(request, page, form="speech", notice=SPEECH_NOTICES[chosen])


@router.post("/devices/{device_id}/identity")
async def set_identity(
    request: Request,
    device_id: str,
    ctx: Ctx,
    user: AdminUser,
    typed: SubmittedForm,
    site: Annotated[str, Form(max_length=sites.MAX_SITE)] = "",
    name: Annotated[str, Form(max_length=sites.MAX_NAME)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """The counter's site and name: they decide reception access and statistics."""
    check_csrf(request, csrf_token)

    def save() -> None:
        with ctx.sessions.begin() as session:
            before = sites.set_identity(session, device_id, site, name)
            audit.record(
                session, user.username, "device.identity", device_id,
                actor_user_id=user.user_id, site=site.strip(), name=name.strip(),
                previous_site=before[0], previous_name=before[1],
            )  # fmt: skip

    page = f"/devices/{device_id}#appels"
    try:
        await asyncio.to_thread(save)
    except sites.SiteError as exc:
        _known_device(ctx, device_id)
        return redirect_to(request, page, form="identity", error=str(exc), values=typed)
    config_push.request_push(ctx, [device_id])  # its timetable's scope follows its site
    return redirect_to(request, page, form="identity", notice="Site et nom enregistrés.")


def _known_device(ctx: AppContext, device_id: str) -> None:
    """A refusal about a counter that does not exist is a 404, not a message on its page."""
    with ctx.sessions() as session:
        if session.get(Device, device_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu")


@router.post("/devices/{device_id}/call-token", response_class=HTMLResponse)
def new_call_token(
    request: Request,
    device_id: str,
    db: Db,
    user: AdminUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    device = db.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Guichet inconnu")
    audit.record(db, user.username, "device.call_token", device_id, actor_user_id=user.user_id)
    token = calls_admin.new_call_token(db, device_id)  # commits, the audit entry with it
    response = render(
        request, "call_token.html", {"device": device, "token": token}, principal=user
    )
    response.headers["Cache-Control"] = "no-store"
    return response
